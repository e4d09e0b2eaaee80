"""GapGuard reads, from the real broker, the records faust never delivered to an agent,
and acknowledges the range in faust's commit bookkeeping."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from kafka import KafkaProducer

from stream.clients import KafkaSettings
from stream.clients.topics import TopicSpec, ensure_topics
from stream.worker.plumbing import GapGuard

pytestmark = pytest.mark.integration


class RecordingConsumer:
    def __init__(self, committed: dict | None = None) -> None:
        self.acked: list[tuple] = []
        self._committed_offset = committed or {}

    def ack(self, message) -> bool:
        self.acked.append((message.tp.topic, message.tp.partition, message.offset))
        return True


def app_stub(guarantee: str, committed: dict | None = None) -> SimpleNamespace:
    return SimpleNamespace(conf=SimpleNamespace(processing_guarantee=SimpleNamespace(value=guarantee)), consumer=RecordingConsumer(committed))


def test_missing_records_are_read_and_marked_handled(kafka_bootstrap: str, unique_name) -> None:
    topic = unique_name("gaps")
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    ensure_topics(kafka, [TopicSpec(topic, 1, 1)])
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for n in range(10):
        producer.send(topic, key=b"k", value=f"v{n}".encode(), partition=0)
    producer.flush()
    producer.close()

    app = app_stub("at_least_once")
    guard = GapGuard(app, kafka, topic)
    missing = asyncio.run(guard.missing_before(0, last_done=2, first=7))
    assert [(offset, value) for offset, _, value in missing] == [(n, f"v{n}".encode()) for n in range(3, 7)]
    assert app.consumer.acked == [(topic, 0, n) for n in range(3, 7)]
    # Contiguous batches, an unknown last offset: nothing to read.
    assert asyncio.run(guard.missing_before(0, last_done=6, first=7)) == []
    assert asyncio.run(guard.missing_before(0, last_done=None, first=7)) == []
    # Under exactly-once a one-offset hole is a transaction marker; a wider one is read.
    eos = GapGuard(app_stub("exactly_once"), kafka, topic)
    assert asyncio.run(eos.missing_before(0, last_done=4, first=6)) == []
    assert [offset for offset, _, _ in asyncio.run(eos.missing_before(0, last_done=4, first=8))] == [5, 6, 7]
