"""SIGKILL the real worker mid-replay, restart it: no change lost; none doubled under
exactly-once; no erasure lost either (erasure requests are part of the history)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from tests.integration.worker_harness import (
    WorkerNamespace, assert_erased_customers_have_no_profile, batch_results, history_files,
)

pytestmark = pytest.mark.integration


def _records_in(ns: WorkerNamespace, topic_key: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=ns.bootstrap)
    try:
        topic = ns.topics[topic_key]
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        return sum(consumer.end_offsets(partitions).values()) if partitions else 0
    finally:
        consumer.close()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_sigkill_mid_replay_loses_no_change(kafka_bootstrap: str, unique_name, tmp_path: Path, guarantee: str) -> None:
    history, (first_part, second_part) = history_files(tmp_path, 600, (6, 10), erasure_share=0.05)

    ns = WorkerNamespace(kafka_bootstrap, unique_name("crash"), tmp_path, guarantee=guarantee)
    try:
        ns.start_worker()
        ns.cli("replay", str(first_part))
        deadline = time.monotonic() + 120
        while _records_in(ns, "segment_changes") < 250:
            assert time.monotonic() < deadline, ns.log_tail()
            time.sleep(0.05)
        assert ns.stop_worker(signal.SIGKILL) == -signal.SIGKILL

        ns.start_worker()
        # --wait alone must return too: under exactly-once the worker's forwarding leaves
        # transaction markers at the end of segments-events, past which nothing arrives.
        ns.cli("replay", str(second_part), "--wait", "--timeout", "240")
        empty = tmp_path / "empty.jsonl"
        empty.write_bytes(b"")
        ns.cli("replay", str(empty), "--until", "1998-07-01", "--wait", "--timeout", "240")
        assert "rebuilding local state from the changelogs" in ns.worker_log.read_text()

        snapshot = tmp_path / "snapshot.jsonl"
        ns.cli("snapshot", "--out", str(snapshot))
        batch_profiles, batch_changes = batch_results(history, "1998-07-01", tmp_path)
        assert snapshot.read_bytes().splitlines() == batch_profiles, ns.overtaken()

        if guarantee == "exactly_once":
            committed = ns.changes_by_customer(isolation_level="read_committed")
            assert committed == batch_changes, "a read_committed consumer must see each change exactly once"
        else:
            assert ns.first_changes_by_customer() == batch_changes, "every change must be delivered (duplicates allowed)"
        assert_erased_customers_have_no_profile(ns, batch_changes)
    finally:
        ns.close()
