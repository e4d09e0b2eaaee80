"""How far a consumer group has got: committed offsets against log-end offsets."""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from stream.clients.settings import KafkaSettings


def end_offsets(kafka: KafkaSettings, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(client_id="segments-progress", isolation_level="read_committed", **kafka.kafka_python_kwargs())
    try:
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        return consumer.end_offsets(partitions) if partitions else {}
    finally:
        consumer.close()


def records_from(kafka: KafkaSettings, starts: dict[TopicPartition, int]) -> Iterator[Any]:
    """The committed records of each partition from its offset in ``starts`` to its end as
    it is now."""
    consumer = KafkaConsumer(client_id="segments-progress", enable_auto_commit=False, isolation_level="read_committed",
                             **kafka.kafka_python_kwargs())
    try:
        partitions = list(starts)
        if not partitions:
            return
        consumer.assign(partitions)
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        ends = consumer.end_offsets(partitions)
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=1000).values():
                yield from records
    finally:
        consumer.close()


def committed_offsets(kafka: KafkaSettings, group: str) -> dict[TopicPartition, int]:
    admin = KafkaAdminClient(client_id="segments-progress", **kafka.kafka_python_kwargs())
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
    finally:
        admin.close()


def wait_until_consumed(
    kafka: KafkaSettings,
    group: str,
    targets: dict[TopicPartition, int],
    *,
    timeout: float,
    on_progress: Callable[[int], None] | None = None,
) -> bool:
    """Wait until ``group`` has committed at least ``targets`` on every partition.

    Transaction markers take an offset each, so a target is the end offset observed
    after the producer finished; committed offsets reach it once everything before it
    was processed.
    """
    deadline = time.monotonic() + timeout
    while True:
        committed = committed_offsets(kafka, group)
        behind = sum(max(0, end - committed.get(tp, 0)) for tp, end in targets.items())
        if on_progress:
            on_progress(behind)
        if behind == 0:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
