"""Everything one agent batch produces, handed to the Kafka producer as whole record
batches (one per destination topic partition) instead of record by record.

Why: sending through faust's producer costs about 20 µs a record (a future, a lock, a
sensor call and aiokafka's accumulator per record, then a ``gather`` over all the
futures), and a batch of events makes several records each: changes, profiles and
changelog records. aiokafka's ``create_batch``/``send_batch`` append a record for a few
microseconds and give one future per record batch.

Records keep their order per topic partition: records of one ``OutputBatch`` are
appended in the order added (for a topic that gets both, records placed on a partition
go before the ones placed by key), and aiokafka queues successive batches of a topic
partition in order.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator

import faust

from stream.worker.plumbing import ChangelogRecord
from stream.worker.table_keys import key_hash

KeyValue = tuple[bytes | None, bytes | None]


class OutputBatch:
    """Records to produce, grouped by topic partition until :meth:`send`.

    ``source_topic``/``source_partition``: where the agent's input came from. Under
    exactly-once the records go into the transaction that commits that source
    partition's offsets; faust would pick a transaction from the *destination* topic's
    partition group, and output topics are not consumed by the app, so it would send
    them outside any transaction.

    ``transactional=False``: outside any transaction under exactly-once too, for records
    no consumed offset stands behind (clock ticks, nudges). A transaction commits only
    with offsets that moved, so in one they stayed invisible to ``read_committed``
    readers until an event came for the partition.
    """

    def __init__(self, app: faust.App, source_topic: str, source_partition: int, *, transactional: bool = True) -> None:
        self._app = app
        self._source_topic = source_topic
        self._source_partition = source_partition
        self._transactional = transactional
        # topic -> partition (None: by key, decided at send) -> [(key, value)]
        self._records: dict[str, dict[int | None, list[KeyValue]]] = {}

    def add(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None) -> None:
        """Queue a record; ``partition`` None: Kafka's default partitioner on ``key``
        (the partition a plain ``producer.send`` would choose)."""
        self._records.setdefault(topic, {}).setdefault(partition, []).append((key, value))

    def add_changelog(self, records: list[ChangelogRecord]) -> None:
        """Queue changelog records of the tables' source partition (a table partition's
        changelog partition is the source partition it is co-partitioned with)."""
        for topic, key, value in records:
            self.add(topic, key, value, partition=self._source_partition)

    async def send(self) -> asyncio.Future:
        """Queue everything with the producer; returns a future done once the broker
        has acknowledged every record (failed if any record failed)."""
        deliveries: list[asyncio.Future] = []
        if self._records:
            async with self._producer() as producer:
                for topic, by_partition in self._records.items():
                    for partition, records in (await self._placed(producer, topic, by_partition)).items():
                        deliveries.extend(await _send_records(producer, topic, partition, records))
            self._records = {}
        return asyncio.ensure_future(asyncio.gather(*deliveries))

    @contextlib.asynccontextmanager
    async def _producer(self) -> AsyncIterator[Any]:
        """The aiokafka producer to send with (faust has no public API for it): the
        source partition's transactional producer under exactly-once, held with the
        lock faust takes around that producer's sends and commits."""
        faust_producer = self._app.producer
        if not (self._app.in_transaction and self._transactional):
            yield faust_producer._ensure_producer()
            return
        group = self._app.assignor.group_for_topic(self._source_topic)
        transactional_id = f"{self._app.conf.id}-{group}-{self._source_partition}"
        async with faust_producer._trn_locks[transactional_id]:
            producer = faust_producer._transaction_producers.get(transactional_id)
            if producer is None:
                raise RuntimeError(f"no transaction is open for {transactional_id}")
            yield producer

    @staticmethod
    async def _placed(
        producer: Any, topic: str, by_partition: dict[int | None, list[KeyValue]]
    ) -> dict[int, list[KeyValue]]:
        keyed = by_partition.pop(None, None)
        placed: dict[int, list[KeyValue]] = dict(by_partition)  # type: ignore[arg-type]
        if keyed:
            all_partitions = sorted(await producer.partitions_for(topic))
            for key, value in keyed:
                partition = all_partitions[key_hash(key) % len(all_partitions)]
                placed.setdefault(partition, []).append((key, value))
        return placed


async def _send_records(producer: Any, topic: str, partition: int, records: list[KeyValue]) -> list[asyncio.Future]:
    """Append ``records`` to as many record batches as their size needs (the producer's
    ``max_batch_size`` each; a larger record gets a batch of its own) and queue them in
    order."""
    deliveries = []
    builder = producer.create_batch()
    for key, value in records:
        if builder.append(key=key, value=value, timestamp=None) is None:
            deliveries.append(await producer.send_batch(builder, topic, partition=partition))
            builder = producer.create_batch()
            builder.append(key=key, value=value, timestamp=None)  # a batch's first record always fits
    deliveries.append(await producer.send_batch(builder, topic, partition=partition))
    return deliveries
