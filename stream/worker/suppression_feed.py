"""The suppression list as a compacted Kafka topic: key = customer id, a value = on the
list, a tombstone (null value) = off it. Read from the beginning at start-up and followed
while the app runs, so an unsubscribe published anywhere takes effect within moments."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from stream.clients import KafkaSettings

log = logging.getLogger("stream.playbooks")


class SuppressionFeed:
    def __init__(self, kafka: KafkaSettings, topic: str, partitions: list[int], listed: frozenset[str] = frozenset()) -> None:
        self.kafka = kafka
        self.topic = topic
        self.partitions = partitions
        self.from_file = listed
        self.from_topic: set[str] = set()
        # Decisions wait for this: nobody on the list may slip through at start-up.
        self.loaded = asyncio.Event()

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self.from_file or customer_id in self.from_topic

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        customer_id = key.decode("utf-8", errors="replace")
        if value is None:
            self.from_topic.discard(customer_id)
        else:
            self.from_topic.add(customer_id)

    async def follow(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(enable_auto_commit=False, **self.kafka.aiokafka_kwargs())
        await consumer.start()
        try:
            partitions = [TopicPartition(self.topic, p) for p in self.partitions]
            if not partitions:
                log.warning("suppression topic %s has no partitions: only the file applies", self.topic)
                self.loaded.set()
                return
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            while True:
                batches: dict[Any, list[Any]] = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        self.apply(record.key, record.value)
                if not self.loaded.is_set() and all(await asyncio.gather(*(self._reached(consumer, tp, ends[tp]) for tp in partitions))):
                    log.info("suppression topic %s read: %d customers listed", self.topic, len(self.from_topic))
                    self.loaded.set()
        finally:
            await consumer.stop()

    @staticmethod
    async def _reached(consumer: Any, tp: Any, end: int) -> bool:
        return await consumer.position(tp) >= end
