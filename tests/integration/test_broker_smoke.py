"""The broker every other integration test stands on: plain, transactional and compacted topics."""

from __future__ import annotations

import asyncio
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType

from tests.integration.kafka_helpers import consume_all, create_topic

pytestmark = pytest.mark.integration


def test_produce_consume_round_trip(kafka_bootstrap: str, unique_name) -> None:
    topic = unique_name("roundtrip")
    create_topic(kafka_bootstrap, topic, partitions=3)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(30)}
    for key, value in sent.items():
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()

    records = consume_all(kafka_bootstrap, topic, expected=len(sent))
    assert {r.key: r.value for r in records} == sent
    assert len(records) == len(sent)
    assert {r.partition for r in records} == {0, 1, 2}


def test_kafka_python_transactions_hide_aborted_records(kafka_bootstrap: str, unique_name) -> None:
    topic = unique_name("txn")
    create_topic(kafka_bootstrap, topic)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=unique_name("txid"))
    producer.init_transactions()

    producer.begin_transaction()
    producer.send(topic, b"committed-1")
    producer.send(topic, b"committed-2")
    producer.commit_transaction()

    producer.begin_transaction()
    producer.send(topic, b"aborted")
    producer.flush()
    producer.abort_transaction()

    producer.begin_transaction()
    producer.send(topic, b"committed-3")
    producer.commit_transaction()
    producer.close()

    committed = consume_all(kafka_bootstrap, topic, expected=3, isolation_level="read_committed")
    assert [r.value for r in committed] == [b"committed-1", b"committed-2", b"committed-3"]
    # The aborted record is in the log: a read_uncommitted reader sees it, so the test above can fail.
    everything = consume_all(kafka_bootstrap, topic, expected=4)
    assert b"aborted" in [r.value for r in everything]


def test_aiokafka_transactions_work(kafka_bootstrap: str, unique_name) -> None:
    """faust's exactly_once uses aiokafka's transactional producer: check it on this broker."""
    from aiokafka import AIOKafkaProducer

    topic = unique_name("aiotxn")
    create_topic(kafka_bootstrap, topic)

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=unique_name("aiotx"))
        await producer.start()
        try:
            async with producer.transaction():
                await producer.send_and_wait(topic, b"kept")
            await producer.begin_transaction()
            await producer.send_and_wait(topic, b"dropped")
            await producer.abort_transaction()
        finally:
            await producer.stop()

    asyncio.run(produce())
    committed = consume_all(kafka_bootstrap, topic, expected=1, isolation_level="read_committed")
    assert [r.value for r in committed] == [b"kept"]


def test_compacted_topic_keeps_latest_value_per_key(kafka_bootstrap: str, unique_name) -> None:
    topic = unique_name("compacted")
    create_topic(
        kafka_bootstrap,
        topic,
        config={
            "cleanup.policy": "compact",
            "segment.ms": "100",
            "min.cleanable.dirty.ratio": "0.001",
            "delete.retention.ms": "100",
            "min.compaction.lag.ms": "0",
        },
    )
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        assert described["topic"][topic]["cleanup.policy"]["value"] == "compact"
    finally:
        admin.close()

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for round_number in range(5):
        for key in (b"alice", b"bob"):
            producer.send(topic, key=key, value=f"{key.decode()}-{round_number}".encode())
        producer.flush()
        time.sleep(0.2)  # let segments roll so older ones become cleanable

    # Keep rolling segments until the cleaner has removed the superseded values.
    deadline = time.monotonic() + 90
    latest: dict[bytes, bytes] = {}
    while time.monotonic() < deadline:
        producer.send(topic, key=b"filler", value=b"x").get(timeout=10)
        records = consume_all(kafka_bootstrap, topic, timeout=2)
        latest = {r.key: r.value for r in records}
        superseded = [r for r in records if r.key in (b"alice", b"bob") and r.value != latest[r.key]]
        if not superseded:
            break
        time.sleep(1)
    producer.close()
    assert latest[b"alice"] == b"alice-4" and latest[b"bob"] == b"bob-4"
    assert not superseded, f"compaction left {len(superseded)} superseded records"


def test_consumer_group_commits_and_resumes(kafka_bootstrap: str, unique_name) -> None:
    topic, group = unique_name("group"), unique_name("group-id")
    create_topic(kafka_bootstrap, topic)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for i in range(10):
        producer.send(topic, str(i).encode())
    producer.flush()

    def read(count: int) -> list[bytes]:
        consumer = KafkaConsumer(
            topic, bootstrap_servers=kafka_bootstrap, group_id=group,
            auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=5000,
        )
        values = []
        for record in consumer:
            values.append(record.value)
            if len(values) == count:
                break
        consumer.commit()
        consumer.close()
        return values

    assert read(4) == [b"0", b"1", b"2", b"3"]
    assert read(6) == [str(i).encode() for i in range(4, 10)]
    producer.close()
