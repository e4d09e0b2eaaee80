"""kafka-python consumers: waiting for a topic's partitions, and joining a group safely.

kafka-python 3.0.12 can leave a group member in its rebalance for good, never assigned:
a rejoin the leader starts because its metadata changed (a just-created topic's
partitions appearing right after the first join, or a topic growing) is applied only by
a ``poll()`` still waiting on it, and the leader's own assignment clears the trigger.
Reproduced with the tests' group consumer: 10 hangs in 60 starts on a loaded machine;
none in 60 when the member subscribes only once its metadata has the topic
(:func:`subscribe_when_known`). Subscribed at construction, with two CPU burners beside:
3 hangs in 30 starts, and none in 30 with :func:`finish_joins_left_in_flight` alone,
which also covers a topic that grows while the member runs.
"""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaConsumer


def finish_joins_left_in_flight() -> None:
    """Make kafka-python's group member count a join it left in flight as a rejoin
    still needed, as Java's client does (``rejoinNeededOrPending``): the next ``poll()``
    then joins again instead of taking the member for joined while it is not. Applied
    once per process; tests/unit/clients/test_group_consumer.py pins the kafka-python
    code it relies on."""
    from kafka.coordinator.consumer import ConsumerCoordinator

    need_rejoin = ConsumerCoordinator.need_rejoin
    if getattr(need_rejoin, "finishes_joins_left_in_flight", False):
        return

    def need_rejoin_or_pending(self: Any) -> bool:
        return bool(need_rejoin(self)) or (
            self._subscription.partitions_auto_assigned() and self._join_task is not None
        )

    need_rejoin_or_pending.finishes_joins_left_in_flight = True  # type: ignore[attr-defined]
    ConsumerCoordinator.need_rejoin = need_rejoin_or_pending


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
    finish_joins_left_in_flight()
    partitions_of(consumer, topic, timeout)
    consumer.subscribe([topic])
    consumer.topics()  # a blocking metadata refresh
