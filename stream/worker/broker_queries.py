"""The broker queries the agents and the ops probe make (log start and end offsets of
their source partitions, the group's committed offsets), on a Kafka client of their own.

Why not faust's consumer, which could answer both: its calls run in faust's consumer
thread, off a queue served by two workers that also carry every fetch. A query that
waits there (a coordinator moving, a partition between leaders) holds a worker, and
two of them hold up every fetch, a table recovery's included. This client lives in the
agents' event loop, never joins the group (it has a group id only to read the group's
commits) and bounds every query in time.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from stream.clients import KafkaSettings

log = logging.getLogger(__name__)

# One query's limit, and how many times a query that failed or timed out is tried.
QUERY_TIMEOUT_SECONDS = 15.0
QUERY_ATTEMPTS = 4


class BrokerQueries:
    def __init__(self, kafka: KafkaSettings, group_id: str, *, read_committed: bool) -> None:
        self._kafka = kafka
        self._group_id = group_id
        self._read_committed = read_committed
        self._consumer: Any = None
        self._starting = asyncio.Lock()

    async def end_offsets(self, partitions: list[Any]) -> dict[Any, int]:
        """The end of each partition (the stable end, under read_committed)."""
        if not partitions:
            return {}
        consumer = await self._started()
        return await self._bounded("end offsets", lambda: consumer.end_offsets(list(partitions)))

    async def beginning_offsets(self, partitions: list[Any]) -> dict[Any, int]:
        """The first offset still on the broker of each partition (the log start)."""
        if not partitions:
            return {}
        consumer = await self._started()
        return await self._bounded("beginning offsets", lambda: consumer.beginning_offsets(list(partitions)))

    async def committed(self, partition: Any) -> int | None:
        """The group's committed offset of ``partition`` (None: nothing committed)."""
        consumer = await self._started()
        return await self._bounded("committed offset", lambda: consumer.committed(partition))

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def _started(self) -> Any:
        async with self._starting:
            if self._consumer is None:
                from aiokafka import AIOKafkaConsumer

                consumer = AIOKafkaConsumer(
                    group_id=self._group_id,
                    enable_auto_commit=False,
                    isolation_level="read_committed" if self._read_committed else "read_uncommitted",
                    **self._kafka.aiokafka_kwargs(),
                )
                await consumer.start()
                self._consumer = consumer
            return self._consumer

    async def _bounded(self, what: str, query: Any) -> Any:
        attempt = 1
        while True:
            try:
                return await asyncio.wait_for(query(), QUERY_TIMEOUT_SECONDS)
            except Exception as exc:
                if attempt >= QUERY_ATTEMPTS:
                    raise
                log.warning("broker query (%s) failed, attempt %d of %d: %r", what, attempt, QUERY_ATTEMPTS, exc)
                attempt += 1
