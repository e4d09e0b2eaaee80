"""Offsets the process's consumers stepped over because no message is there: transaction
markers, aborted records (read_committed), records compaction removed.

faust delivers messages, not the offsets between them, so a gap between two delivered
offsets is either messages faust lost (stream/worker/offsets.py reads those from the
broker) or offsets that never held one. Telling them apart by reading the broker costs a
consumer of its own and a fetch, and such gaps are routine: under exactly-once every
commit leaves a marker on each `segments-events` partition the intake wrote to, and a
transactional producer upstream leaves one after each of its transactions on the input
topics. Each cost the partition's agent 35-500 ms of waiting (measured in the crash
test's exactly-once worker: a read per partition per commit). aiokafka's fetcher knows
which offsets it stepped over; ``note_skipped_offsets`` wraps it to remember them, and
``read_range`` answers from that memory when it covers the whole range.

The wrapper relies on how aiokafka 0.14's ``PartitionRecords._unpack_records`` moves
``next_fetch_offset`` (tests/unit/worker/test_skipped_offsets.py pins its source).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator
from typing import Any

# A partition's spans kept: a gap is looked up right after the fetcher stepped over it,
# so only the latest few matter; the agents drop those below what they have handled.
SPANS_PER_PARTITION = 256

# (topic, partition, read_committed): an aborted record is skipped only read committed.
Key = tuple[str, int, bool]


class SkippedOffsets:
    """Spans ``[start, end)`` of offsets with no message, per partition and isolation
    level. Thread-safe: faust's consumer runs its fetcher in a thread of its own."""

    def __init__(self, spans_per_partition: int = SPANS_PER_PARTITION) -> None:
        self._spans_per_partition = spans_per_partition
        self._lock = threading.Lock()
        self._spans: dict[Key, list[tuple[int, int]]] = {}

    def note(self, key: Key, start: int, end: int) -> None:
        if end <= start:
            return
        with self._lock:
            spans = self._spans.setdefault(key, [])
            if spans and spans[-1][0] <= start <= spans[-1][1]:  # the usual case: at the end
                spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
                return
            bisect.insort(spans, (start, end))
            merged: list[tuple[int, int]] = []
            for span_start, span_end in spans:
                if merged and span_start <= merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(span_end, merged[-1][1]))
                else:
                    merged.append((span_start, span_end))
            del merged[:-self._spans_per_partition]
            self._spans[key] = merged

    def covers(self, key: Key, start: int, end: int) -> bool:
        """Whether every offset of ``[start, end)`` is known to hold no message."""
        if end <= start:
            return True
        with self._lock:
            spans = self._spans.get(key, [])
            index = bisect.bisect_right(spans, (start, float("inf"))) - 1
            return index >= 0 and spans[index][0] <= start and end <= spans[index][1]

    def drop_below(self, key: Key, offset: int) -> None:
        """Forget the spans that end at or before ``offset``: handled already."""
        with self._lock:
            spans = self._spans.get(key)
            if spans:
                self._spans[key] = [span for span in spans if span[1] > offset]


SKIPPED = SkippedOffsets()


def noting_skips(records: Iterator[Any], partition_records: Any, registry: SkippedOffsets) -> Iterator[Any]:
    """``records`` (what ``PartitionRecords._unpack_records`` yields), noting in
    ``registry`` the offsets it steps over: before each record, and to the position it
    ends at."""
    from aiokafka.consumer.fetcher import READ_COMMITTED

    tp = partition_records._tp
    key = (tp.topic, tp.partition, partition_records._isolation_level == READ_COMMITTED)
    expected = partition_records.next_fetch_offset  # the fetch's offset, read at the first next()
    for record in records:
        if record.offset > expected:
            registry.note(key, expected, record.offset)
        expected = max(expected, record.offset + 1)
        yield record
    registry.note(key, expected, partition_records.next_fetch_offset)


_installed = [False]


def note_skipped_offsets(registry: SkippedOffsets = SKIPPED) -> None:
    """Wrap aiokafka's record unpacking, once per process."""
    if _installed[0]:
        return
    from aiokafka.consumer.fetcher import PartitionRecords

    unpack = PartitionRecords._unpack_records

    def _unpack_records(self: Any) -> Iterator[Any]:
        return noting_skips(unpack(self), self, registry)

    PartitionRecords._unpack_records = _unpack_records
    _installed[0] = True
