"""stream.worker.exactly_once_recovery.py: which changelog partitions an exactly-once recovery
may count as read to their end, and ending the recovery then, on faust's own Recovery."""

from __future__ import annotations

import asyncio

import faust
from faust.tables.recovery import Recovery
from faust.types import TP

from stream.worker.exactly_once_recovery import end_recovery_if_done, mark_read_to_end, quiet_unfinished

QUIET, DONE, BUSY, FRESH = (TP("app-customers-changelog", partition) for partition in range(4))


class RecordingTable:
    def __init__(self) -> None:
        self.applied: list[list[str]] = []

    def apply_changelog_batch(self, batch: list[str]) -> None:
        self.applied.append(list(batch))


def recovery_in_progress(now: float) -> Recovery:
    app = faust.App("recovery-tail-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    recovery = Recovery(app, app.tables)
    # faust's highwater is a partition's end offset less one.
    recovery.active_highwaters.update({QUIET: 10, DONE: 5, BUSY: 7, FRESH: 3})
    recovery.active_offsets.update({QUIET: 9, DONE: 5, BUSY: 3, FRESH: -1})
    recovery._recovery_started_at = now - 2.0
    recovery._active_events_received_at.update({QUIET: now - 1.0, DONE: now - 1.0, BUSY: now - 0.1})
    recovery.in_recovery = app.in_recovery = True
    return recovery


def test_only_unfinished_partitions_that_went_quiet_are_checked() -> None:
    recovery = recovery_in_progress(now=100.0)
    quiet = quiet_unfinished(recovery, 100.0, quiet_seconds=0.5)
    # (first offset not applied, end offset): QUIET's rest is offset 10, the last one.
    assert quiet == {QUIET: (10, 11), FRESH: (0, 4)}
    # A partition that got nothing at all counts as quiet from the recovery's start.
    assert quiet_unfinished(recovery, 98.2, quiet_seconds=0.5) == {}


def test_a_partition_is_marked_only_if_nothing_was_applied_since_the_check() -> None:
    recovery = recovery_in_progress(now=100.0)
    recovery.active_offsets[FRESH] = 2  # a record arrived while its rest was being read
    assert not mark_read_to_end(recovery, FRESH, applied_before=-1)
    assert recovery.active_offsets[FRESH] == 2
    assert mark_read_to_end(recovery, QUIET, applied_before=9)
    assert recovery.active_remaining()[QUIET] == 0


def test_the_recovery_ends_as_faust_ends_it_once_nothing_is_left() -> None:
    async def main() -> None:
        recovery = recovery_in_progress(now=100.0)
        table = RecordingTable()
        recovery.buffers[table].extend(["buffered-1", "buffered-2"])
        for tp in (QUIET, BUSY, FRESH):
            assert not end_recovery_if_done(recovery)
            recovery.active_offsets[tp] = recovery.active_highwaters[tp]
        assert end_recovery_if_done(recovery)
        assert recovery.signal_recovery_end.is_set()
        assert not recovery.in_recovery and not recovery.app.in_recovery
        assert table.applied == [["buffered-1", "buffered-2"]]  # nothing buffered is lost
        assert not end_recovery_if_done(recovery)  # once

    asyncio.run(main())


def test_a_check_marks_the_partitions_whose_rest_is_empty_and_rereads_no_partition_without_progress(monkeypatch) -> None:
    import stream.worker.offsets
    from stream.worker.exactly_once_recovery import settle_marker_tails

    reads: list[tuple[int, int, int]] = []
    records_left = {FRESH.partition}  # FRESH still has records on their way to faust

    async def read_range(kafka, topic, partition, start, end, *, read_committed, first_only, poll_ms):
        assert read_committed and first_only
        reads.append((partition, start, end))
        return ["a record"] if partition in records_left else []

    monkeypatch.setattr(stream.worker.offsets, "read_range", read_range)

    async def main() -> None:
        import time
        from types import SimpleNamespace

        recovery = recovery_in_progress(now=time.monotonic())
        # BUSY stays busy however long this test takes (its 0.1 s once ran out in CI, on
        # a loaded machine, between two checks), until the test makes it quiet below.
        recovery._active_events_received_at[BUSY] = time.monotonic() + 3600
        app = SimpleNamespace(in_recovery=True, tables=SimpleNamespace(recovery=recovery))
        records_found_at: dict = {}
        assert await settle_marker_tails(app, None, records_found_at) == 1  # QUIET (BUSY is not quiet)
        assert sorted(reads) == [(QUIET.partition, 10, 11), (FRESH.partition, 0, 4)]
        assert recovery.active_remaining()[QUIET] == 0 and recovery.active_remaining()[FRESH] == 4
        assert records_found_at == {FRESH: -1}
        assert recovery.in_recovery  # BUSY and FRESH are not done

        reads.clear()
        assert await settle_marker_tails(app, None, records_found_at) == 0
        assert reads == []  # FRESH made no progress since its rest was found non-empty

        # FRESH's records arrive; BUSY's rest turns out to be markers once it is quiet.
        recovery.active_offsets[FRESH] = 3
        recovery._active_events_received_at[BUSY] = time.monotonic() - 1.0
        assert await settle_marker_tails(app, None, records_found_at) == 1
        assert reads == [(BUSY.partition, 4, 8)]
        assert not recovery.in_recovery and recovery.signal_recovery_end.is_set()

    asyncio.run(main())


def test_faust_asks_the_broker_where_changelogs_end_even_under_exactly_once() -> None:
    """faust's own answer under exactly-once was aiokafka's cached last stable offset:
    None for a partition not fetched yet, which its recovery read as "ends at -1"."""
    from types import SimpleNamespace

    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    from stream.worker.faust_patches import apply_faust_patches

    changelog = TP("app-customers-changelog", 0)

    class NotFetchedYet:
        def last_stable_offset(self, tp: TP) -> None:
            return None

        async def end_offsets(self, partitions: list[TP]) -> dict[TP, int]:
            return {tp: 42 for tp in partitions}  # what a read_committed ListOffsets returns

    consumer_thread = SimpleNamespace(
        consumer=SimpleNamespace(in_transaction=True), _ensure_consumer=lambda: NotFetchedYet(),
    )
    apply_faust_patches()
    ends = asyncio.run(AIOKafkaConsumerThread._highwaters(consumer_thread, [changelog]))
    assert ends == {changelog: 42}


def _calls_detect_aborted_tx(function: object) -> bool:
    """Whether faust's loop ``function`` can call its detect_aborted_tx (loads it in
    _maybe_signal_recovery_end)."""
    import dis

    [nested] = [const for const in function.__code__.co_consts  # type: ignore[attr-defined]
                if getattr(const, "co_name", None) == "_maybe_signal_recovery_end"]
    return any(instruction.argval == "detect_aborted_tx" for instruction in dis.get_instructions(nested))


def test_faust_recovery_never_ends_a_partition_on_its_consumer_position() -> None:
    """Fix 3: the branch of faust's loop that called detect_aborted_tx (ending a
    partition on the consumer's position, records still on their way) is gone; the rest
    of faust's loop is its own code."""
    import inspect
    import textwrap

    from faust.tables import recovery as recovery_module

    from stream.worker.exactly_once_recovery import FAUST_GUESS, without_recovery_guess

    # faust's loop as its file has it (the class attribute may be patched already).
    faust_source = textwrap.dedent("".join(inspect.getsourcelines(recovery_module.Recovery._slurp_changelogs.fun)[0]))
    assert FAUST_GUESS in faust_source
    namespace: dict = {}
    exec(compile(faust_source, recovery_module.__file__, "exec"), vars(recovery_module), namespace)
    original = namespace["_slurp_changelogs"].fun
    without_recovery_guess()
    without_recovery_guess()  # once per process
    patched = recovery_module.Recovery._slurp_changelogs.fun
    assert _calls_detect_aborted_tx(original) and not _calls_detect_aborted_tx(patched)
    assert patched.__code__.co_filename == recovery_module.__file__
    assert set(patched.__code__.co_names) == set(original.__code__.co_names)
