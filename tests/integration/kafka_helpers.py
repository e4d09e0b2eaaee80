"""Small kafka-python helpers for integration tests (real broker only)."""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer
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
