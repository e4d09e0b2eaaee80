"""BrokerQueries bounds each query in time and tries a failed one again, a few times.
(Its answers from a real broker: tests/integration/test_broker_queries.py.)"""

from __future__ import annotations

import asyncio

import pytest

from stream.clients import KafkaSettings
from stream.worker import broker_queries
from stream.worker.broker_queries import BrokerQueries


def queries() -> BrokerQueries:
    return BrokerQueries(KafkaSettings(bootstrap_servers="127.0.0.1:1"), "group", read_committed=False)


def test_a_failing_query_is_tried_again_until_it_answers(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    async def flaky() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("broker moved")
        return 42

    assert asyncio.run(queries()._bounded("test", flaky)) == 42
    assert len(calls) == 3
    assert caplog.text.count("broker query (test) failed") == 2


def test_a_query_that_never_answers_fails_after_the_last_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker_queries, "QUERY_TIMEOUT_SECONDS", 0.01)
    calls = []

    async def stuck() -> None:
        calls.append(1)
        await asyncio.sleep(3600)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(queries()._bounded("test", stuck))
    assert len(calls) == broker_queries.QUERY_ATTEMPTS
