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


def test_the_compacted_topics_the_worker_creates_carry_their_compaction_settings(
    kafka_bootstrap: str, unique_name, tmp_path: Path,
) -> None:
    """Compaction cleans closed segments only: the clocks changelog (a few keys per
    partition, rewritten every tick) must not keep a week of records uncompacted, and the
    topics holding customer data must not keep an erased customer's older values for
    longer than max_compaction_lag_days."""
    ns = WorkerNamespace(kafka_bootstrap, unique_name("segments"), tmp_path)
    try:
        ns.start_worker()
        holding_customers = [f"{ns.prefix}-{table}-changelog" for table in ("customers", "timers", "recent_changes")]
        profiles = ns.topics["customer_profiles"]
        configs = topic_configs(kafka_bootstrap, f"{ns.prefix}-clocks-changelog", *holding_customers, profiles)
        assert configs[f"{ns.prefix}-clocks-changelog"]["segment.ms"] == "600000"
        assert configs[f"{ns.prefix}-clocks-changelog"]["cleanup.policy"] == "compact"
        # What an erased customer's older values are compacted away within (a week).
        for topic in [*holding_customers, profiles]:
            assert configs[topic]["max.compaction.lag.ms"] == str(7 * 86_400_000), topic
            assert configs[topic]["cleanup.policy"] == "compact", topic
        # Hour-long segments: a restore reads at most about an hour of writes uncompacted.
        for topic in holding_customers:
            assert configs[topic]["segment.ms"] == str(3_600_000), topic
        assert "max.compaction.lag.ms" not in configs[f"{ns.prefix}-clocks-changelog"]
        # Erasure requests stay, so that a replay of the inputs erases the customers again.
        assert topic_configs(kafka_bootstrap, ns.topics["erasures"])[ns.topics["erasures"]] == {"retention.ms": "-1"}
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
