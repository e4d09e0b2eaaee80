"""Settings a worker must refuse at start-up, against what is on the broker."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

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


def test_the_changelogs_of_few_keys_rewritten_every_batch_roll_their_segments_often(
    kafka_bootstrap: str, unique_name, tmp_path: Path,
) -> None:
    """Compaction cleans closed segments only: the clocks changelog (a few keys per
    partition, rewritten every tick) must not keep a week of records uncompacted."""
    ns = WorkerNamespace(kafka_bootstrap, unique_name("segments"), tmp_path)
    try:
        ns.start_worker()
        configs = topic_configs(kafka_bootstrap, f"{ns.prefix}-clocks-changelog", f"{ns.prefix}-customers-changelog")
        assert configs[f"{ns.prefix}-clocks-changelog"]["segment.ms"] == "600000"
        assert configs[f"{ns.prefix}-clocks-changelog"]["cleanup.policy"] == "compact"
        # The customers' changelog keeps the broker's default.
        assert "segment.ms" not in configs[f"{ns.prefix}-customers-changelog"]
    finally:
        ns.close()


def topic_configs(bootstrap: str, *topics: str) -> dict[str, dict[str, str]]:
    """The configs set on each topic (not the broker's defaults)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics])
        return {
            topic: {name: entry["value"] for name, entry in entries.items() if entry["config_source"] == "DYNAMIC_TOPIC_CONFIG"}
            for topic, entries in described["topic"].items()
        }
    finally:
        admin.close()
