"""OutputBatch against the real broker: records land where a plain send would put them,
in order, across as many record batches as they need, and inside the source
partition's transaction under exactly-once."""

from __future__ import annotations

import asyncio
import collections
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream.clients import KafkaSettings
from stream.clients.topics import TopicSpec, ensure_topics
from stream.worker.record_batches import OutputBatch

pytestmark = pytest.mark.integration


def app_with(producer: AIOKafkaProducer, *, transactional_id: str | None = None) -> SimpleNamespace:
    """What OutputBatch uses of a faust app, around a real aiokafka producer."""
    faust_producer = SimpleNamespace(
        _ensure_producer=lambda: producer,
        _trn_locks=collections.defaultdict(asyncio.Lock),
        _transaction_producers={transactional_id: producer} if transactional_id else {},
    )
    return SimpleNamespace(
        producer=faust_producer, in_transaction=transactional_id is not None,
        conf=SimpleNamespace(id="app"), assignor=SimpleNamespace(group_for_topic=lambda topic: 0),
    )


async def read(kafka: KafkaSettings, topic: str, partitions: int, *, read_committed: bool = False) -> dict[int, list[tuple[bytes, bytes]]]:
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False, isolation_level="read_committed" if read_committed else "read_uncommitted",
        **kafka.aiokafka_kwargs(),
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: dict[int, list[tuple[bytes, bytes]]] = {p: [] for p in range(partitions)}
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                found[tp.partition].extend((record.key, record.value) for record in records)
        return found
    finally:
        await consumer.stop()


def test_keyed_and_placed_records_in_order_over_several_batches(kafka_bootstrap: str, unique_name) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    batched, plain, placed = unique_name("batched"), unique_name("plain"), unique_name("placed")
    ensure_topics(kafka, [TopicSpec(batched, 3, 1), TopicSpec(plain, 3, 1), TopicSpec(placed, 3, 1)])
    records = [(f"customer-{n % 17}".encode(), f"value-{n:04d}-".encode() * 20) for n in range(600)]

    async def scenario() -> None:
        # 2 KiB record batches: the 600 records (about 200 KB) need dozens.
        producer = AIOKafkaProducer(max_batch_size=2048, **kafka.aiokafka_kwargs())
        await producer.start()
        try:
            output = OutputBatch(app_with(producer), "source", 0)
            for key, value in records:
                output.add(batched, key, value)
                output.add(placed, key, value, partition=2)
            await (await output.send())
            await asyncio.gather(*[await producer.send(plain, value, key=key) for key, value in records])
        finally:
            await producer.stop()

    asyncio.run(scenario())
    # Each key in the partition a plain keyed send chose, and every partition in the order added.
    assert asyncio.run(read(kafka, batched, 3)) == asyncio.run(read(kafka, plain, 3))
    assert asyncio.run(read(kafka, placed, 3)) == {0: [], 1: [], 2: records}


def test_records_go_in_the_source_partitions_transaction(kafka_bootstrap: str, unique_name) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    topic = unique_name("in-transaction")
    ensure_topics(kafka, [TopicSpec(topic, 2, 1)])

    async def scenario(commit: bool, values: list[bytes]) -> None:
        transactional_id = "app-0-5"  # f"{app id}-{group}-{source partition}"
        producer = AIOKafkaProducer(transactional_id=transactional_id, **kafka.aiokafka_kwargs())
        await producer.start()
        try:
            await producer.begin_transaction()
            output = OutputBatch(app_with(producer, transactional_id=transactional_id), "source", 5)
            for value in values:
                output.add(topic, b"k", value)
            await (await output.send())
            await (producer.commit_transaction() if commit else producer.abort_transaction())
        finally:
            await producer.stop()

    asyncio.run(scenario(False, [b"aborted-1", b"aborted-2"]))
    asyncio.run(scenario(True, [b"committed-1", b"committed-2"]))
    seen = [value for records in asyncio.run(read(kafka, topic, 2, read_committed=True)).values() for _, value in records]
    assert seen == [b"committed-1", b"committed-2"]
