"""Merging the input partitions into one stream in event-time order.

Kafka orders messages within a partition only. When a customer's events are spread
over partitions (unkeyed, or keyed by something else) or over the three input topics,
the order the worker reads them in depends on fetch timing, and the spec makes a
customer's results depend on that order (late events, ties). So the intake merges its
input partitions the way Kafka Streams synchronizes a task's inputs: each partition is
a FIFO queue (its own order is kept, late events stay late), and the next event
released is the head with the smallest ``occurred_at``, but only while every partition
that could still send something older has an event queued. A partition read to its end
and quiet, or never active, no longer holds the others back.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Callable, Generic, Hashable, TypeVar

Item = TypeVar("Item")
Partition = Hashable


class EventTimeMerger(Generic[Item]):
    def __init__(self) -> None:
        self._queues: dict[Partition, deque[tuple[int, int, int, Item]]] = {}
        self._arrival = itertools.count()
        self._held = 0
        self.last_offset: dict[Partition, int] = {}
        # partition -> the newest occurred_at released while it was empty and counted
        # exhausted: an event it sends later that is older than this was overtaken.
        self._passed_over: dict[Partition, int] = {}

    def __len__(self) -> int:
        return self._held

    def held_in(self, partition: Partition) -> int:
        """How many events of ``partition`` are held."""
        return len(self._queues.get(partition, ()))

    def clear(self) -> list[Item]:
        """Drop everything held and every partition's progress (after a rebalance the
        consumer reads all of them again from their committed offsets). Returns the
        items dropped."""
        dropped = [entry[3] for queue in self._queues.values() for entry in queue]
        self._queues.clear()
        self._held = 0
        self.last_offset.clear()
        self._passed_over.clear()
        return dropped

    def note_offset(self, partition: Partition, offset: int) -> None:
        """Record progress on a partition (also for messages that carry no event)."""
        self.last_offset[partition] = offset

    def add(self, partition: Partition, offset: int, occurred_at: int, item: Item, arrived_at: int = 0) -> int | None:
        """``arrived_at``: the record's timestamp in Kafka (ms). It breaks ties between
        equal ``occurred_at``s across partitions ("the later arrival counts as later"),
        where the order we happen to read them in means nothing; ``segments replay``
        stamps its records in file order.

        Returns None, or, when newer events were released while ``partition`` counted as
        exhausted, the newest of them: this event was overtaken (it will be processed
        as a late event), which only the caller can report."""
        self.note_offset(partition, offset)
        self._queues.setdefault(partition, deque()).append((occurred_at, arrived_at, next(self._arrival), item))
        self._held += 1
        passed_over = self._passed_over.pop(partition, None)
        return passed_over if passed_over is not None and occurred_at < passed_over else None

    def release(self, partitions: list[Partition], exhausted: Callable[[Partition], bool]) -> list[Item]:
        """The held items that can no longer be overtaken, in merge order."""
        released: list[Item] = []
        while self._held:
            waiting_on_empty = any(not self._queues.get(p) and not exhausted(p) for p in partitions)
            if waiting_on_empty:
                break
            passed_over = [p for p in partitions if not self._queues.get(p)]  # all counted exhausted
            heads = [(queue[0], partition) for partition, queue in self._queues.items() if queue]
            _, partition = min(heads, key=lambda head: head[0][:3])
            occurred_at, _, _, item = self._queues[partition].popleft()
            released.append(item)
            self._held -= 1
            for empty in passed_over:
                if self._passed_over.get(empty, occurred_at) <= occurred_at:
                    self._passed_over[empty] = occurred_at
        return released


class InputQuiet:
    """Which input partitions can no longer send anything older for now: what
    :meth:`EventTimeMerger.release` asks through ``exhausted``. Pure bookkeeping; the
    caller passes the (monotonic) time and the broker's answers.

    A partition counts as exhausted once the broker confirmed, after the partition went
    quiet for ``quiet_seconds``, that nothing in it is left to read: its end is at or
    before the first offset not read yet. (The end the fetcher last saw can lag a busy
    producer by seconds, which would let newer events overtake.) That first offset is
    the one after the last message taken, or past what the caller found holds no
    message (:meth:`nothing_before`): a transactional producer leaves a commit marker
    after each transaction, an offset no message is ever delivered from, and aborted
    records are never delivered under read_committed. For a partition nothing was
    taken from since the start or the last rebalance, only the caller knows where
    reading resumes (the group's committed offset); until it says nothing is left
    before the end, the partition holds the others back. Such a partition must also have
    stayed silent for ``idle_seconds`` (unless it is empty): its next records may be a
    moment behind those of the others.

    Silence counts from the first delivery of any partition, not from the assignment:
    after an assignment the consumer may take seconds (a table recovery, a slow first
    fetch) before it delivers anything. :meth:`forget` at a rebalance starts everything
    over: the merger forgets every partition's progress then (all are read again from
    their committed offsets)."""

    def __init__(self, quiet_seconds: float, idle_seconds: float) -> None:
        self.quiet_seconds = quiet_seconds
        self.idle_seconds = idle_seconds
        # Counts the calls of forget(): a finding about offsets made before one is void.
        self.epoch = 0
        self._reading_since: float | None = None  # the first delivery since forget()
        self._quiet_since: dict[Partition, float] = {}
        self._confirmed_end: dict[Partition, tuple[float, int]] = {}  # (asked at, end offset)
        self._nothing_before: dict[Partition, int] = {}
        self._records_from: dict[Partition, int] = {}

    def delivered(self, partition: Partition, now: float) -> None:
        """Messages of ``partition`` arrived at ``now``."""
        if self._reading_since is None:
            self._reading_since = now
        self._quiet_since[partition] = now

    def _silent_since(self, partition: Partition, now: float) -> float:
        return self._quiet_since.get(partition, self._reading_since if self._reading_since is not None else now)

    def quiet(self, partitions: list[Partition], now: float) -> list[Partition]:
        """Those of ``partitions`` whose end is worth asking the broker for."""
        return [p for p in partitions if now - self._silent_since(p, now) >= self.quiet_seconds]

    def confirmed(self, partition: Partition, asked_at: float, end: int) -> None:
        """The broker said ``partition`` ends at ``end``, asked at ``asked_at``."""
        self._confirmed_end[partition] = (asked_at, end)

    def confirmed_end(self, partition: Partition) -> tuple[float, int]:
        """(when asked, end offset) of the last confirmation; (0.0, -1) if none."""
        return self._confirmed_end.get(partition, (0.0, -1))

    def first_unread(self, partition: Partition, last_offset: int | None) -> int | None:
        """The first offset of ``partition`` not known to be read, given ``last_offset``,
        the last offset taken from it (None: none since the last :meth:`forget`). None
        when nothing is known: where reading resumes is the caller's to find."""
        known = [offset for offset in (
            None if last_offset is None else last_offset + 1, self._nothing_before.get(partition),
        ) if offset is not None]
        return max(known) if known else None

    def nothing_before(self, partition: Partition, offset: int, epoch: int) -> None:
        """The caller found nothing left to read in ``partition`` before ``offset`` (no
        message between the first offset not read and ``offset``), having started to
        look during ``epoch``."""
        if epoch == self.epoch and offset > self._nothing_before.get(partition, -1):
            self._nothing_before[partition] = offset

    def records_from(self, partition: Partition, offset: int, epoch: int) -> None:
        """The caller found a message in ``partition`` at or after ``offset``, the first
        offset not read, having started to look during ``epoch``."""
        if epoch == self.epoch:
            self._records_from[partition] = offset

    def worth_looking(self, partition: Partition, first_unread: int) -> bool:
        """Whether to look for messages from ``first_unread`` on: not when some were
        found from there already (they stay until they are read, and reading them moves
        ``first_unread``)."""
        return self._records_from.get(partition) != first_unread

    def exhausted(self, partition: Partition, last_offset: int | None, now: float) -> bool:
        """``last_offset``: the last offset taken from ``partition`` (None: none since
        the last :meth:`forget`)."""
        quiet_from = self._silent_since(partition, now)
        asked_at, end = self.confirmed_end(partition)
        first_unread = self.first_unread(partition, last_offset)
        if asked_at <= quiet_from or first_unread is None or first_unread < end:
            return False
        return last_offset is not None or end == 0 or now - quiet_from >= self.idle_seconds

    def describe(self, partition: Partition, last_offset: int | None, now: float) -> dict[str, object]:
        """What the merge knows of ``partition``, for operators (/api/debug/offsets):
        whether it counts as read to its end, and why not."""
        asked_at, end = self.confirmed_end(partition)
        return {
            "read_to_end": self.exhausted(partition, last_offset, now),
            "silent_seconds": round(now - self._silent_since(partition, now), 3),
            "first_unread": self.first_unread(partition, last_offset),
            "broker_end": end if asked_at else None,
            "broker_end_asked_seconds_ago": round(now - asked_at, 3) if asked_at else None,
            "records_found_from": self._records_from.get(partition),
        }

    def forget(self) -> None:
        self.epoch += 1
        self._reading_since = None
        self._quiet_since.clear()
        self._confirmed_end.clear()
        self._nothing_before.clear()
        self._records_from.clear()
