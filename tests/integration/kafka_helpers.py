"""Small kafka-python helpers for integration tests (real broker only)."""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError


def create_topic(bootstrap: str, name: str, partitions: int = 1, config: dict[str, str] | None = None) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config or {})])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def consume_all(
    bootstrap: str,
    topic: str,
    *,
    expected: int | None = None,
    timeout: float = 30.0,
    isolation_level: str = "read_uncommitted",
    idle_after_expected: float = 1.0,
) -> list[Any]:
    """Read a topic from the beginning until ``expected`` records arrived (plus a short
    idle period, to catch extras) or ``timeout`` passed."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level=isolation_level,
        consumer_timeout_ms=500,
    )
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    reached_at: float | None = None
    try:
        while time.monotonic() < deadline:
            for record in consumer:
                records.append(record)
            if expected is not None and len(records) >= expected:
                reached_at = reached_at or time.monotonic()
                if time.monotonic() - reached_at >= idle_after_expected:
                    break
    finally:
        consumer.close()
    return records


def read_to_end(bootstrap: str, topic: str, *, isolation_level: str = "read_uncommitted", idle: float = 2.0) -> list[Any]:
    """Every record of ``topic`` up to its end offsets as they were when called (for
    ``read_committed``, the last stable offsets), in each partition's order. Stops at
    those ends, or, should a partition's position never reach its end (nothing but
    transaction markers left to read), after ``idle`` seconds without a record."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=isolation_level)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[Any] = []
        last_record_at = time.monotonic()
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() - last_record_at >= idle:
                break
            for batch in consumer.poll(timeout_ms=100).values():
                records.extend(batch)
                last_record_at = time.monotonic()
        return records
    finally:
        consumer.close()
