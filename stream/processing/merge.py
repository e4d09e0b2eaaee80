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
