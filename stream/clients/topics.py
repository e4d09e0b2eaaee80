"""Creating the topics the project reads and writes, with kafka-python's admin client."""

from __future__ import annotations

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


def ensure_topics(kafka: KafkaSettings, specs: list[TopicSpec]) -> list[str]:
    """Create the topics that don't exist yet; return the names created."""
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
        return created
    finally:
        admin.close()


def partitions_of(kafka: KafkaSettings, topic: str) -> list[int]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(client_id="segments-admin", **kafka.kafka_python_kwargs())
    try:
        return sorted(consumer.partitions_for_topic(topic) or [])
    finally:
        consumer.close()
