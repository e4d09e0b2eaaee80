"""kafka-python consumers: waiting for a topic's partitions, and joining a group safely.

kafka-python 3.0.12 can leave a group member in its rebalance for good, never assigned:
a rejoin the leader starts because its metadata changed (a just-created topic's
partitions appearing right after the first join) is applied only by a ``poll()`` still
waiting on it, and the leader's own assignment clears the trigger. Reproduced with the
tests' group consumer: 10 hangs in 60 starts on a loaded machine; none in 60 when the
member subscribes only once its metadata has the topic (:func:`subscribe_when_known`).
"""

from __future__ import annotations

import time

from kafka import KafkaConsumer


def partitions_of(consumer: KafkaConsumer, topic: str, timeout: float = 60) -> set[int]:
    """``topic``'s partitions as the consumer's metadata has them, waiting for a topic
    just created to appear."""
    deadline = time.monotonic() + timeout
    partitions = consumer.partitions_for_topic(topic)
    while not partitions and time.monotonic() < deadline:
        time.sleep(0.2)
        partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise RuntimeError(f"topic {topic} not found")
    return partitions


def subscribe_when_known(consumer: KafkaConsumer, topic: str, timeout: float = 60) -> None:
    """Subscribe ``consumer`` (created without topics) to ``topic`` once its metadata
    has the topic's partitions, refreshed once more so the first join already sees them
    and no metadata-triggered second join follows."""
    partitions_of(consumer, topic, timeout)
    consumer.subscribe([topic])
    consumer.topics()  # a blocking metadata refresh
