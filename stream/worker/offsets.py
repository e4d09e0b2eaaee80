"""Source offsets: what each agent has finished, and commits decided by that alone.

faust commits what its agents acknowledged, message by message, and that bookkeeping
breaks around crashes and rebalances (all seen here under load, after a SIGKILL):

- records fetched before a rebalance's seek arrive after it; faust then drops the
  re-fetched records below them ("DROPPED MESSAGE ROFF") and counts the range as a gap
  it treats as done, so the agent never sees them and a commit can skip past them;
- a message counted twice is never acknowledged, and one offset never acknowledged
  stops every later commit of its partition for good;
- offsets already covered by a crashed worker's state but not committed are
  acknowledged by nobody, and the partition's commits stop as well.

So the agents keep their own account instead. Each source partition has an expected
next offset; a record below it was handled already and is skipped, a record above it
means faust lost the ones in between, which :class:`HoleReader` reads from the broker
itself. Records lost at the end of a partition have no later record to reveal them:
:func:`settle_tails` finds them (:class:`StalledTails`) and sends faust's consumer
back for them. The app commits, per partition, the first offset not yet finished
(:class:`SourceProgress`), through :func:`commit_from_progress`. faust's own
acknowledgements are still made (its rebalance waits for them) but no longer decide
what is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Hashable, Iterable

from stream.clients import KafkaSettings
from stream.worker.faust_patches import seek_back
from stream.worker.plumbing import ack_processed
from stream.worker.skipped_offsets import SKIPPED

log = logging.getLogger("stream.worker.offsets")

Partition = Hashable
# Seconds a hole read may go without progress before the worker gives up loudly.
HOLE_READ_STALL_SECONDS = 60.0
# How often source partitions are checked for a tail of transaction markers, or of
# records faust fetched and never delivered.
TAILS_SECONDS = 2.0
# Checks in a row that must find a partition's records undelivered, at the same expected
# offset, before faust's consumer is sent back for them. A false alarm (records
# only slow to arrive) costs a re-fetch whose duplicates the agents skip.
STALLED_TAIL_CHECKS = 3


class SourceProgress:
    """Per source partition: the next offset expected, and the offsets taken in but not
    yet finished (their effects not yet delivered). Pure bookkeeping, no Kafka.

    ``stored_last(partition)``: for an agent that stores, with its state, the last offset
    it processed. Right after a rebalance (nothing taken yet) that stored offset says how
    far the partition was processed, perhaps further than the last commit (by a worker
    that crashed before committing)."""

    def __init__(self, stored_last: Callable[[Partition], int | None] | None = None) -> None:
        self._next: dict[Partition, int] = {}
        self._pending: dict[Partition, set[int]] = {}
        self._stored_last = stored_last

    def expected(self, partition: Partition) -> int | None:
        """The next offset to handle, or None when nothing was taken since the last reset
        and nothing is stored."""
        found = self._next.get(partition)
        if found is None and self._stored_last is not None:
            stored = self._stored_last(partition)
            found = stored + 1 if stored is not None else None
        return found

    def take(self, partition: Partition, offsets: Iterable[int]) -> None:
        """Offsets taken in, in order; everything below the last one that was not taken
        (transaction markers, aborted records) counts as finished."""
        pending = self._pending.setdefault(partition, set())
        for offset in offsets:
            pending.add(offset)
            self._next[partition] = offset + 1

    def done(self, partition: Partition, offsets: Iterable[int]) -> None:
        pending = self._pending.get(partition)
        if pending is not None:
            pending.difference_update(offsets)

    def unfinished(self, partition: Partition) -> int:
        return len(self._pending.get(partition) or ())

    def skip_to(self, partition: Partition, seen_expected: int | None, offset: int) -> bool:
        """Expect ``offset`` next, if nothing moved since ``seen_expected`` was read (None:
        nothing was expected yet) and nothing is unfinished (the caller found no records
        in between). True if done."""
        if self.expected(partition) != seen_expected or self.unfinished(partition):
            return False
        if seen_expected is not None and offset <= seen_expected:
            return False
        self._next[partition] = offset
        return True

    def next_to_commit(self, partition: Partition) -> int | None:
        """The offset to commit: the first one taken but not finished, else the next
        expected. None when nothing was taken since the last reset and nothing is stored."""
        pending = self._pending.get(partition)
        if pending:
            return min(pending)
        return self.expected(partition)

    def describe(self, partition: Partition) -> dict[str, int | None]:
        """For the ops endpoint /api/debug/offsets."""
        pending = self._pending.get(partition) or ()
        return {
            "expected": self.expected(partition), "next_to_commit": self.next_to_commit(partition),
            "unfinished": len(pending), "first_unfinished": min(pending) if pending else None,
        }

    def reset(self) -> None:
        """Forget everything: after a rebalance faust reads every partition again from
        its committed offset."""
        self._next.clear()
        self._pending.clear()


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A source record as the agents handle it; ``event`` is faust's event, or None for
    a record read by :class:`HoleReader`."""

    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None
    event: Any = None

    @classmethod
    def of(cls, event: Any) -> "SourceRecord":
        message = event.message
        timestamp_ms = int(message.timestamp * 1000) if message.timestamp else None
        return cls(message.offset, message.key, event.value, timestamp_ms, event)


async def read_range(
    kafka: KafkaSettings, topic: str, partition: int, start: int, end: int, *, read_committed: bool,
    first_only: bool = False, poll_ms: int = 500,
) -> list[SourceRecord]:
    """The records of one partition in ``[start, end)``, read with a consumer of our own.
    Offsets with no record (transaction markers, aborted records) are simply absent.
    ``first_only``: stop at the first record found. ``poll_ms``: each wait for records;
    a range of markers alone yields none, so it ends only after one such wait. A range
    this process's consumers stepped over already (stream/worker/skipped_offsets.py)
    holds no record, and is not read."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    if SKIPPED.covers((topic, partition, read_committed), start, end):
        return []
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed" if read_committed else "read_uncommitted",
        **kafka.aiokafka_kwargs(),
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        records: list[SourceRecord] = []
        loop = asyncio.get_running_loop()
        position, moved_at = start, loop.time()
        while position < end:
            for batch in (await consumer.getmany(tp, timeout_ms=poll_ms)).values():
                records.extend(
                    SourceRecord(r.offset, r.key, r.value, r.timestamp)
                    for r in batch if start <= r.offset < end
                )
            if first_only and records:
                return records[:1]
            now_position = await consumer.position(tp)
            if now_position != position:
                position, moved_at = now_position, loop.time()
            elif loop.time() - moved_at > HOLE_READ_STALL_SECONDS:
                # Failing is better than skipping records: a restart reads them again.
                raise RuntimeError(f"{topic}[{partition}]: reading offsets {start}..{end - 1} made no progress at {position}")
        return records
    finally:
        await consumer.stop()


class HoleReader:
    """Completes what faust delivered for one source topic into the unbroken run of
    records after the last one handled: skips records already handled, and reads the
    ones faust lost between two deliveries from the broker."""

    def __init__(self, kafka: KafkaSettings, *, read_committed: bool) -> None:
        self.kafka = kafka
        self.read_committed = read_committed

    async def complete(self, tp: Any, expected: int, events: list[Any]) -> list[SourceRecord]:
        """``events``: faust events of partition ``tp``, in offset order; ``expected``:
        the first offset not yet handled."""
        records: list[SourceRecord] = []
        for event in events:
            offset = event.message.offset
            if offset < expected:
                continue
            if offset > expected:
                found = await read_range(self.kafka, tp.topic, tp.partition, expected, offset, read_committed=self.read_committed)
                if found:
                    log.warning("%s[%d]: offsets %d..%d never reached the agent; read them directly",
                                tp.topic, tp.partition, expected, offset - 1)
                records.extend(found)
            records.append(SourceRecord.of(event))
            expected = offset + 1
        SKIPPED.drop_below((tp.topic, tp.partition, self.read_committed), expected)
        return records


async def take_unhandled(
    app: Any, holes: HoleReader, progress: SourceProgress, tp: Any, events: list[Any]
) -> list[SourceRecord]:
    """The records an agent has to handle for ``events`` (faust events of partition
    ``tp``, in offset order), their offsets taken in ``progress``: the ones faust lost
    are read from the broker, and the ones handled before this rebalance are skipped
    and acknowledged at once."""
    records = await holes.complete(tp, await resume_offset(app, progress, tp), events)
    taken = {record.offset for record in records}
    ack_processed(app, [event for event in events if event.message.offset not in taken])
    if records:
        progress.take(tp, [record.offset for record in records])
    return records


async def source_end_offsets(app: Any, partitions: list[Any]) -> dict[Any, int]:
    """The broker's end offsets of source partitions, fresh (the stable end under
    read_committed); see stream/worker/broker_queries.py for why not faust's consumer."""
    return await app.broker_queries.end_offsets(partitions)


class StalledTails:
    """Partitions whose tail holds records the agent never got. Pure bookkeeping.

    After a restart faust can fetch a partition's last records and never deliver them
    (tests/integration/test_lag.py's restart test stalled in about 1 run of 5 that way):
    the consumer's position is past them, so they are not fetched again, and with no
    later record :class:`HoleReader` never sees the hole. The partition's end stays past
    its expected offset, check after check, while the expected offset does not move
    (the partition may even look busy: the intake can hold the one record it did get
    until the other partitions catch up)."""

    def __init__(self, checks: int = STALLED_TAIL_CHECKS) -> None:
        self._checks = checks
        self._seen: dict[Partition, tuple[int, int]] = {}

    def found(self, partition: Partition, expected: int) -> bool:
        """A check found the partition's end past ``expected``. True once ``checks``
        checks in a row found it so with the same expected offset (counting then starts
        over)."""
        last_expected, count = self._seen.get(partition, (None, 0))
        count = count + 1 if last_expected == expected else 1
        if count >= self._checks:
            del self._seen[partition]
            return True
        self._seen[partition] = (expected, count)
        return False

    def clear(self, partition: Partition) -> None:
        """A check found nothing past the partition's expected offset."""
        self._seen.pop(partition, None)

    def reset(self) -> None:
        """Forget everything (a rebalance is on: nothing is delivered meanwhile)."""
        self._seen.clear()


async def settle_tails(
    app: Any, progress: SourceProgress, tails: StalledTails, kafka: KafkaSettings, partitions: list[Any],
    *, read_committed: bool,
) -> None:
    """Move idle partitions past a tail with no records, and send faust's consumer back
    for a tail of records it never delivered.

    A partition whose last offsets are transaction markers or aborted records delivers
    nothing past them, so the expected offset, and the commit, would stay short of the
    end for good: `segments replay --wait` would never see the worker finish, and
    `segments lag` would show a lag of one marker. A tail of records faust lost would
    stay unprocessed until some later record arrived."""
    if app.rebalancing or app.in_recovery or not app.consumer.flow_active:
        tails.reset()
        return
    spans = {}
    for tp, end in (await source_end_offsets(app, partitions)).items():
        if progress.expected(tp) is None and end <= (app.consumer._committed_offset.get(tp) or 0):
            tails.clear(tp)  # nothing since the commit faust found at the last rebalance
            continue
        spans[tp] = (await resume_offset(app, progress, tp), end)
    stalled = await check_tails(progress, tails, kafka, spans, read_committed=read_committed)
    for tp, start in stalled.items():
        log.warning("%s[%d]: records from offset %d were fetched but never reached the agent; fetching them again",
                    tp.topic, tp.partition, start)
    if stalled:
        await seek_back(app, stalled)


async def check_tails(
    progress: SourceProgress, tails: StalledTails, kafka: KafkaSettings, spans: dict[Any, tuple[int, int]],
    *, read_committed: bool,
) -> dict[Any, int]:
    """One check of ``spans``: per source partition, its first offset not handled and
    its end. An idle partition with no record in between expects the end. Returns the
    partitions with records there that ``tails`` finds stalled, with that first offset.

    Under load every partition has records past its expected offset: the broker is read
    only for idle partitions and for stalled ones, to confirm."""
    stalled: dict[Any, int] = {}
    for tp, (start, end) in spans.items():
        if end <= start:
            tails.clear(tp)
            continue
        expected = progress.expected(tp)
        idle = not progress.unfinished(tp)
        suspect = tails.found(tp, start)
        if not (idle or suspect):
            continue
        found = await read_range(kafka, tp.topic, tp.partition, start, end, read_committed=read_committed, first_only=True)
        if progress.expected(tp) != expected:
            tails.clear(tp)  # delivered meanwhile
        elif not found:
            tails.clear(tp)
            if idle:
                progress.skip_to(tp, expected, end)
        elif suspect:
            stalled[tp] = start
    return stalled


async def resume_offset(app: Any, progress: SourceProgress, tp: Any) -> int:
    """The first offset of ``tp`` an agent has not handled: what ``progress`` expects,
    else the group's committed offset, asked of the broker. (faust's own copy is filled
    in by its seek after a rebalance, and records fetched before that seek can reach an
    agent first: with no copy yet, they would be taken for a hole from offset 0.)"""
    expected = progress.expected(tp)
    if expected is not None:
        return expected
    return await app.broker_queries.committed(tp) or 0


class BatchGate:
    """Runs one batch at a time per source partition, and, under exactly-once, keeps
    commits and batches apart.

    One at a time: around a rebalance faust can run a partition's old and new actor
    side by side for a moment; two batches of one partition interleaved would load and
    store the same customers and lose an update. Apart from commits: a transaction
    committed while a batch is half sent would commit half of its outputs with the
    offsets before it, and a crash would then send that half again."""

    def __init__(self) -> None:
        self._partition_locks: dict[Any, asyncio.Lock] = {}
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closers = 0
        self._open = asyncio.Event()
        self._open.set()

    @contextlib.asynccontextmanager
    async def batch(self, partition: Partition) -> AsyncIterator[None]:
        async with self._partition_locks.setdefault(partition, asyncio.Lock()):
            await self._open.wait()
            self._in_flight += 1
            self._idle.clear()
            try:
                yield
            finally:
                self._in_flight -= 1
                if not self._in_flight:
                    self._idle.set()

    @contextlib.asynccontextmanager
    async def closed(self) -> AsyncIterator[None]:
        self._closers += 1
        self._open.clear()
        try:
            await self._idle.wait()
            yield
        finally:
            self._closers -= 1
            if not self._closers:
                self._open.set()


def commit_from_progress(
    app: Any,
    topics: set[str],
    next_to_commit: Callable[[Any], int | None],
    gate: BatchGate | None = None,
    before_rebalance: Callable[[], None] | None = None,
) -> None:
    """Make ``app``'s consumer commit ``next_to_commit(tp)`` for the partitions of
    ``topics`` instead of what its acknowledgements add up to. Idempotent; call once the
    consumer exists (e.g. on the first assignment). (faust has no public hook for this.)

    ``before_rebalance`` runs when faust starts waiting, at a rebalance or a stop, for
    every message it delivered to be acknowledged: the place to let go of messages an
    agent holds (they are not finished, so they are read again after the rebalance)."""
    consumer = app.consumer
    if getattr(consumer, "_segments_commit_topics", None) is not None:
        return
    consumer._segments_commit_topics = topics
    original_new_offset = consumer._new_offset
    original_pending = consumer._filter_tps_with_pending_acks

    def new_offset(tp: Any) -> int | None:
        if tp.topic not in topics:
            return original_new_offset(tp)
        # faust's per-message bookkeeping is not used for these: keep it from growing.
        consumer._acked.pop(tp, None)
        consumer._acked_index.pop(tp, None)
        consumer._gap.pop(tp, None)
        return next_to_commit(tp)

    def with_pending(selection: Any = None) -> Iterable[Any]:
        from aiokafka import TopicPartition

        chosen = set(original_pending(selection))
        # aiokafka's transactional commit takes its own TopicPartition type only.
        chosen.update(
            TopicPartition(tp.topic, tp.partition) for tp in consumer.assignment()
            if tp.topic in topics and (selection is None or tp in selection or tp.topic in selection)
        )
        return iter(chosen)

    consumer._new_offset = new_offset
    consumer._filter_tps_with_pending_acks = with_pending
    if before_rebalance is not None:
        original_wait_empty = consumer.wait_empty

        async def wait_empty() -> None:
            before_rebalance()
            await original_wait_empty()

        consumer.wait_empty = wait_empty
    if gate is not None:
        original_force_commit = consumer.force_commit

        async def force_commit(*args: Any, **kwargs: Any) -> bool:
            async with gate.closed():
                return await original_force_commit(*args, **kwargs)

        consumer.force_commit = force_commit
