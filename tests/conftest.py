"""Shared fixtures. Unit tests need none of these; integration tests ask for ``kafka_bootstrap``."""

from __future__ import annotations

import itertools
import os
import uuid
from typing import Iterator

import pytest

from tests.support.brokers import provide_broker

_counter = itertools.count()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka broker for the whole test session, one per pytest-xdist process (see
    tests/support/brokers.py)."""
    with provide_broker(tmp_path_factory.mktemp("broker-home")) as bootstrap:
        # Child processes (workers, CLI commands) started by tests find the same broker.
        previous = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        try:
            yield bootstrap
        finally:
            if previous is None:
                os.environ.pop("KAFKA_BOOTSTRAP_SERVERS", None)
            else:
                os.environ["KAFKA_BOOTSTRAP_SERVERS"] = previous


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> "UniqueNames":
    """Topic names and group ids no other test (or earlier run) uses."""
    return UniqueNames(request.node.name)


class UniqueNames:
    def __init__(self, test_name: str) -> None:
        safe = "".join(ch if ch.isalnum() else "-" for ch in test_name)[:40].strip("-")
        self.prefix = f"t-{safe}-{uuid.uuid4().hex[:8]}"

    def __call__(self, purpose: str) -> str:
        return f"{self.prefix}-{purpose}-{next(_counter)}"
