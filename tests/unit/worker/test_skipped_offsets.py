"""stream/worker/skipped_offsets.py: the spans of offsets with no message, what the
wrapped fetcher notes, and a pin on the aiokafka code it wraps."""

from __future__ import annotations

from types import SimpleNamespace

from stream.worker.skipped_offsets import SkippedOffsets, noting_skips
from tests.support.pins import method_source_sha256

KEY = ("orders", 0, True)


def test_a_gap_is_covered_only_when_all_of_it_was_skipped() -> None:
    skipped = SkippedOffsets()
    skipped.note(KEY, 2, 3)  # a commit marker
    skipped.note(KEY, 3, 6)  # aborted records and their abort marker: merged with it
    skipped.note(KEY, 7, 8)
    assert skipped.covers(KEY, 2, 6)
    assert skipped.covers(KEY, 4, 5)
    assert skipped.covers(KEY, 7, 8)
    assert not skipped.covers(KEY, 1, 3)  # offset 1 holds a record
    assert not skipped.covers(KEY, 5, 8)  # 6 does
    assert not skipped.covers(KEY, 8, 9)
    assert skipped.covers(KEY, 5, 5)  # an empty range
    # Another isolation level, another partition: nothing known.
    assert not skipped.covers(("orders", 0, False), 2, 3)
    assert not skipped.covers(("orders", 1, True), 2, 3)


def test_spans_noted_out_of_order_merge() -> None:
    """A seek back makes the fetcher step over offsets it had noted already, or earlier."""
    skipped = SkippedOffsets()
    skipped.note(KEY, 10, 12)
    skipped.note(KEY, 4, 5)
    skipped.note(KEY, 5, 10)
    skipped.note(KEY, 11, 12)
    assert skipped.covers(KEY, 4, 12)


def test_only_the_latest_spans_are_kept_and_handled_ones_are_dropped() -> None:
    skipped = SkippedOffsets(spans_per_partition=3)
    for marker in (10, 20, 30, 40):
        skipped.note(KEY, marker, marker + 1)
    skipped.note(KEY, 5, 6)  # out of order: the oldest go
    assert not skipped.covers(KEY, 5, 6)
    assert not skipped.covers(KEY, 10, 11)
    assert skipped.covers(KEY, 20, 21) and skipped.covers(KEY, 40, 41)
    skipped.drop_below(KEY, 30)
    assert not skipped.covers(KEY, 20, 21)
    assert skipped.covers(KEY, 30, 31)


def _partition_records(fetch_offset: int) -> SimpleNamespace:
    from aiokafka.consumer.fetcher import READ_COMMITTED

    return SimpleNamespace(_tp=SimpleNamespace(topic="orders", partition=0), _isolation_level=READ_COMMITTED,
                           next_fetch_offset=fetch_offset)


def _unpack(partition_records: SimpleNamespace, offsets: list[int], ends_at: int):
    """What aiokafka's _unpack_records does to the position: each record moves it to
    the record's offset + 1, a skipped batch past the batch."""
    for offset in offsets:
        partition_records.next_fetch_offset = offset + 1
        yield SimpleNamespace(offset=offset)
    partition_records.next_fetch_offset = ends_at


def test_the_wrapper_notes_what_the_fetcher_steps_over_between_records_and_at_the_end() -> None:
    skipped = SkippedOffsets()
    # offsets: 5 a, 6 marker, 7-8 aborted, 9 abort marker, 10 b, 11 marker (then the end)
    records = _partition_records(5)
    delivered = [record.offset for record in noting_skips(_unpack(records, [5, 10], ends_at=12), records, skipped)]
    assert delivered == [5, 10]
    assert skipped.covers(KEY, 6, 10)
    assert skipped.covers(KEY, 11, 12)
    assert not skipped.covers(KEY, 5, 6) and not skipped.covers(KEY, 10, 11)


def test_a_fetch_that_starts_on_a_marker_notes_it() -> None:
    skipped = SkippedOffsets()
    records = _partition_records(6)
    assert [r.offset for r in noting_skips(_unpack(records, [7], ends_at=8), records, skipped)] == [7]
    assert skipped.covers(KEY, 6, 7)


# sha256 of aiokafka 0.14.0's PartitionRecords._unpack_records: noting_skips relies on
# how it moves next_fetch_offset (to each record's offset + 1 before yielding it, past
# every batch it skips). An upgrade that changes it fails here: check, re-pin.
PINNED_UNPACK = "b803e6d46480732c7a7faa8e784b338bcdd4e707ea67fba96c013654b04b8a08"


def test_the_wrapped_aiokafka_code_is_the_version_the_wrapper_was_written_for() -> None:
    from aiokafka.consumer import fetcher

    assert method_source_sha256(fetcher, "    def _unpack_records(self):") == PINNED_UNPACK, (
        "aiokafka's PartitionRecords._unpack_records changed: check stream/worker/skipped_offsets.py against it"
    )
