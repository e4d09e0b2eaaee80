"""Creating the topics the project reads and writes, with kafka-python's admin client."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from stream.clients.settings import KafkaSettings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int = 1
    config: dict[str, str] = field(default_factory=dict)


class TopicsNotReady(RuntimeError):
    """The broker did not report every topic with a leader for each partition in time."""


def ensure_topics(kafka: KafkaSettings, specs: list[TopicSpec], *, ready_timeout: float = 30.0) -> list[str]:
    """Create the topics that don't exist yet; return the names created. Returns once the
    broker's metadata shows every topic of ``specs`` with a leader for each partition.

    Why wait: a consumer group's assignment covers only the topics its leader's metadata
    shows. A worker that joined while a just-created topic (or a just-started broker's
    topics) was still missing from metadata got no partitions of it, and kept none until
    its next metadata refresh (aiokafka's default: 5 minutes)."""
    admin = KafkaAdminClient(client_id="segments-admin", **kafka.kafka_python_kwargs())
    try:
        existing = set(admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        created = []
        for spec in missing:
            try:
                admin.create_topics([NewTopic(spec.name, spec.partitions, spec.replication_factor, topic_configs=spec.config)])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
        _wait_for_leaders(admin, [spec.name for spec in specs], ready_timeout)
        return created
    finally:
        admin.close()


def topics_without_leaders(described: list[dict]) -> list[str]:
    """The topics of a metadata answer (kafka-python's ``describe_topics``) that are
    unknown, have no partitions yet, or have a partition without a leader."""
    return [
        topic["name"]
        for topic in described
        if topic["error_code"] != 0
        or not topic["partitions"]
        or any(part["error_code"] != 0 or part["leader_id"] < 0 for part in topic["partitions"])
    ]


def _wait_for_leaders(admin: KafkaAdminClient, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        pending = topics_without_leaders(admin.describe_topics(names))
        if not pending:
            return
        if time.monotonic() >= deadline:
            raise TopicsNotReady(f"the broker shows no leader for every partition of {', '.join(sorted(pending))} after {timeout:.0f}s")
        time.sleep(0.2)


def partition_counts(kafka: KafkaSettings, names: list[str]) -> dict[str, int]:
    """How many partitions each topic of ``names`` that exists has (absent: no such topic)."""
    admin = KafkaAdminClient(client_id="segments-admin", **kafka.kafka_python_kwargs())
    try:
        return {
            topic["name"]: len(topic["partitions"])
            for topic in admin.describe_topics(names)
            if topic["error_code"] == 0 and topic["partitions"]
        }
    finally:
        admin.close()


def partitions_of(kafka: KafkaSettings, topic: str) -> list[int]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(client_id="segments-admin", **kafka.kafka_python_kwargs())
    try:
        return sorted(consumer.partitions_for_topic(topic) or [])
    finally:
        consumer.close()
