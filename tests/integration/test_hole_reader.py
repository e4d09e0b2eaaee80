"""HoleReader reads, from the real broker, the records faust never delivered to an
agent, and skips the ones already handled."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream.clients import KafkaSettings
from stream.clients.topics import TopicSpec, ensure_topics
from stream.worker.offsets import HoleReader, SourceProgress, StalledTails, check_tails, read_range

pytestmark = pytest.mark.integration


def delivered(offset: int, value: bytes) -> SimpleNamespace:
    """A faust event as HoleReader reads it."""
    message = SimpleNamespace(offset=offset, key=b"k", timestamp=None)
    return SimpleNamespace(message=message, value=value)


async def produce(kafka: KafkaSettings, topic: str, batches: list[tuple[list[bytes], str | None]]) -> None:
    """``batches``: (values, None | "commit" | "abort"); None is non-transactional. Each
    transaction's marker is on the partition before the next batch is sent: the broker
    writes markers after the commit or abort returns, and a record sent meanwhile would
    land ahead of it (seen once in CI)."""
    plain = AIOKafkaProducer(**kafka.aiokafka_kwargs())
    transactional = AIOKafkaProducer(transactional_id=f"{topic}-tx", **kafka.aiokafka_kwargs())
    ends = AIOKafkaConsumer(**kafka.aiokafka_kwargs())
    await plain.start()
    await transactional.start()
    await ends.start()
    expected_end = 0
    try:
        for values, mode in batches:
            if mode is None:
                for value in values:
                    await plain.send_and_wait(topic, value, key=b"k", partition=0)
                expected_end += len(values)
                continue
            async with transactional.transaction() if mode == "commit" else _aborting(transactional):
                for value in values:
                    await transactional.send_and_wait(topic, value, key=b"k", partition=0)
            expected_end += len(values) + 1  # the marker
            await _until_end(ends, TopicPartition(topic, 0), expected_end)
    finally:
        await plain.stop()
        await transactional.stop()
        await ends.stop()


async def _until_end(consumer: AIOKafkaConsumer, tp: TopicPartition, expected_end: int, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (await consumer.end_offsets([tp]))[tp] < expected_end:
        assert asyncio.get_running_loop().time() < deadline, f"{tp}: no transaction marker at {expected_end - 1}"
        await asyncio.sleep(0.02)


class _aborting:
    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def __aenter__(self) -> None:
        await self.producer.begin_transaction()

    async def __aexit__(self, *exc) -> None:
        await self.producer.abort_transaction()


def test_holes_are_read_and_handled_records_skipped(kafka_bootstrap: str, unique_name) -> None:
    topic = unique_name("holes")
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    ensure_topics(kafka, [TopicSpec(topic, 1, 1)])
    asyncio.run(produce(kafka, topic, [([f"v{n}".encode() for n in range(10)], None)]))
    tp = TopicPartition(topic, 0)
    reader = HoleReader(kafka, read_committed=False)

    # faust delivered 1, 2 (handled already), then 7 and 9: 3..6 and 8 are read.
    events = [delivered(n, f"v{n}".encode()) for n in (1, 2, 7, 9)]
    records = asyncio.run(reader.complete(tp, 3, events))
    assert [(r.offset, r.value) for r in records] == [(n, f"v{n}".encode()) for n in range(3, 10)]
    assert [r.event is not None for r in records] == [n in (7, 9) for n in range(3, 10)]
    # Nothing missing, nothing handled: the delivered events as they are.
    assert [r.offset for r in asyncio.run(reader.complete(tp, 7, events[2:3]))] == [7]
    assert asyncio.run(reader.complete(tp, 10, events)) == []


def test_markers_and_aborted_records_are_no_records(kafka_bootstrap: str, unique_name) -> None:
    topic = unique_name("tx-holes")
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    ensure_topics(kafka, [TopicSpec(topic, 1, 1)])
    # offsets: 0 a, 1 b, 2 marker | 3 x, 4 y, 5 abort marker | 6 c, 7 marker | 8 d (plain)
    asyncio.run(produce(kafka, topic, [([b"a", b"b"], "commit"), ([b"x", b"y"], "abort"), ([b"c"], "commit"), ([b"d"], None)]))
    found = asyncio.run(read_range(kafka, topic, 0, 0, 8, read_committed=True))
    assert [(r.offset, r.value) for r in found] == [(0, b"a"), (1, b"b"), (6, b"c")]
    # A hole made of a marker alone reads as empty, and quickly moves past it.
    assert asyncio.run(read_range(kafka, topic, 0, 7, 8, read_committed=True)) == []
    reader = HoleReader(kafka, read_committed=True)
    records = asyncio.run(reader.complete(TopicPartition(topic, 0), 2, [delivered(8, b"d")]))
    assert [(r.offset, r.value) for r in records] == [(6, b"c"), (8, b"d")]


def test_a_tail_of_markers_is_skipped_and_a_tail_of_records_is_stalled_after_three_checks(
    kafka_bootstrap: str, unique_name
) -> None:
    # A partition ending in a commit marker delivers nothing past it: without the skip,
    # its commit would stay one short of the end for good.
    topic = unique_name("tail")
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    ensure_topics(kafka, [TopicSpec(topic, 1, 1)])
    # offsets: 0 a, 1 b, 2 marker | 3 x, 4 abort marker
    asyncio.run(produce(kafka, topic, [([b"a", b"b"], "commit"), ([b"x"], "abort")]))
    tp = TopicPartition(topic, 0)
    progress = SourceProgress()
    tails = StalledTails(checks=3)

    def check(start: int, end: int) -> dict:
        return asyncio.run(check_tails(progress, tails, kafka, {tp: (start, end)}, read_committed=True))

    progress.take(tp, [0, 1])
    assert [check(2, 5) for _ in range(3)] == [{}, {}, {}]  # only markers: never stalled
    assert (progress.expected(tp), progress.next_to_commit(tp)) == (2, 0)  # 0 and 1 unfinished: nothing moves
    progress.done(tp, [0, 1])
    assert check(2, 5) == {}
    assert progress.next_to_commit(tp) == 5

    # A record past the expected offset is no tail to skip; never delivered, it makes the
    # partition stalled at the third check in a row.
    asyncio.run(produce(kafka, topic, [([b"c"], None)]))
    assert [check(5, 6) for _ in range(3)] == [{}, {}, {tp: 5}]
    assert progress.next_to_commit(tp) == 5
    # Also while the agent holds an earlier record, unfinished (the intake can).
    progress.take(tp, [5])
    asyncio.run(produce(kafka, topic, [([b"d"], None)]))
    assert [check(6, 7) for _ in range(3)] == [{}, {}, {tp: 6}]
    # Delivered before the third check: not stalled.
    assert [check(6, 7) for _ in range(2)] == [{}, {}]
    progress.take(tp, [6])
    assert check(7, 7) == {}


def test_the_fetcher_notes_exactly_the_offsets_with_no_record(kafka_bootstrap: str, unique_name) -> None:
    """stream/worker/skipped_offsets.py against real transactions: what a consumer steps
    over is remembered per isolation level, and read_range answers from it."""
    from stream.worker.skipped_offsets import SKIPPED, note_skipped_offsets

    note_skipped_offsets()
    topic = unique_name("skipped")
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    ensure_topics(kafka, [TopicSpec(topic, 1, 1)])
    # offsets: 0 a, 1 b, 2 marker | 3 x, 4 y, 5 abort marker | 6 c, 7 marker | 8 d (plain)
    asyncio.run(produce(kafka, topic, [([b"a", b"b"], "commit"), ([b"x", b"y"], "abort"), ([b"c"], "commit"), ([b"d"], None)]))

    async def consume(isolation_level: str) -> list[int]:
        consumer = AIOKafkaConsumer(enable_auto_commit=False, isolation_level=isolation_level, **kafka.aiokafka_kwargs())
        await consumer.start()
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            consumer.seek(tp, 0)
            offsets: list[int] = []
            while await consumer.position(tp) < 9:
                for batch in (await consumer.getmany(tp, timeout_ms=200)).values():
                    offsets.extend(record.offset for record in batch)
            return offsets
        finally:
            await consumer.stop()

    assert asyncio.run(consume("read_committed")) == [0, 1, 6, 8]
    committed = (topic, 0, True)
    assert SKIPPED.covers(committed, 2, 6) and SKIPPED.covers(committed, 7, 8)
    assert not any(SKIPPED.covers(committed, offset, offset + 1) for offset in (0, 1, 6, 8))

    assert asyncio.run(consume("read_uncommitted")) == [0, 1, 3, 4, 6, 8]
    uncommitted = (topic, 0, False)
    assert all(SKIPPED.covers(uncommitted, marker, marker + 1) for marker in (2, 5, 7))
    assert not SKIPPED.covers(uncommitted, 3, 5)  # aborted records are records, read uncommitted

    # Answered from memory (no consumer, no wait), and the same as the broker says.
    assert asyncio.run(read_range(kafka, topic, 0, 2, 6, read_committed=True)) == []
    assert [r.offset for r in asyncio.run(read_range(kafka, topic, 0, 2, 7, read_committed=True))] == [6]
