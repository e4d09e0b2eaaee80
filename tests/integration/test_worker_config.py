"""Settings a worker must refuse at start-up, against what is on the broker."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.kafka_helpers import create_topic
from tests.integration.worker_harness import SEGMENTS, WorkerNamespace

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("existing", ["events", "customers-changelog"])
def test_a_worker_with_other_partitions_than_its_apps_topics_stops_naming_the_field(
    kafka_bootstrap: str, unique_name, tmp_path: Path, existing: str,
) -> None:
    ns = WorkerNamespace(kafka_bootstrap, unique_name("partitions"), tmp_path, partitions=4)
    topic = ns.topics["events"] if existing == "events" else f"{ns.prefix}-customers-changelog"
    # The app ran with 2 partitions before.
    create_topic(kafka_bootstrap, topic, partitions=2)
    started = subprocess.run(
        [SEGMENTS, "--config", str(ns.config), "worker"], env=ns.env(), capture_output=True, text=True, timeout=120,
    )
    assert started.returncode == 1, started.stderr[-3000:]
    assert (
        f"{ns.config}: worker.partitions: 4, but {topic} has 2 partitions: app {ns.prefix} keeps its customers' "
        "state sharded over 2 partitions"
    ) in started.stderr
    assert "set partitions = 2" in started.stderr
