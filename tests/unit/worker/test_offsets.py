"""Source-offset bookkeeping: what is committed follows what the agents finished."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace

from aiokafka import TopicPartition

from stream.worker.offsets import BatchGate, SourceProgress, StalledTails, commit_from_progress

TP0 = TopicPartition("events", 0)
TP1 = TopicPartition("events", 1)


def test_nothing_taken_means_nothing_to_commit() -> None:
    progress = SourceProgress()
    assert progress.expected(TP0) is None
    assert progress.next_to_commit(TP0) is None


def test_commit_stops_at_the_first_unfinished_offset() -> None:
    progress = SourceProgress()
    progress.take(TP0, [10, 11, 12, 13])
    assert progress.expected(TP0) == 14
    assert progress.next_to_commit(TP0) == 10
    progress.done(TP0, [11, 13])  # finished out of order (e.g. a dead letter)
    assert progress.next_to_commit(TP0) == 10
    progress.done(TP0, [10])
    assert progress.next_to_commit(TP0) == 12
    progress.done(TP0, [12])
    assert progress.next_to_commit(TP0) == 14


def test_offsets_never_taken_count_as_finished() -> None:
    # Transaction markers and aborted records take offsets but carry nothing.
    progress = SourceProgress()
    progress.take(TP0, [5, 7, 9])
    progress.done(TP0, [5, 7, 9])
    assert progress.next_to_commit(TP0) == 10


def test_skipping_a_records_free_tail_only_when_nothing_moved_or_is_unfinished() -> None:
    progress = SourceProgress()
    progress.take(TP0, [5, 6])
    assert not progress.skip_to(TP0, 7, 9)  # 5 and 6 are unfinished
    progress.done(TP0, [5, 6])
    assert not progress.skip_to(TP0, 6, 9)  # the expected offset is 7, not 6: it moved
    assert not progress.skip_to(TP0, 7, 7)  # not past it
    assert progress.skip_to(TP0, 7, 9)
    assert (progress.expected(TP0), progress.next_to_commit(TP0)) == (9, 9)
    # Nothing taken yet since the last rebalance: the tail past the commit is skipped too.
    assert progress.skip_to(TP1, None, 4)
    assert (progress.expected(TP1), progress.next_to_commit(TP1)) == (4, 4)
    assert not progress.skip_to(TP1, None, 6)  # something is expected now


def test_a_tail_is_stalled_after_checks_in_a_row_at_the_same_offset() -> None:
    tails = StalledTails(checks=3)
    assert not tails.found(TP0, 7)
    assert not tails.found(TP0, 7)
    assert tails.found(TP0, 7)
    # Counting starts over after an alarm, so a tail still stuck is retried later.
    assert [tails.found(TP0, 7) for _ in range(3)] == [False, False, True]


def test_a_tail_that_moves_or_clears_is_not_stalled() -> None:
    tails = StalledTails(checks=3)
    tails.found(TP0, 7)
    tails.found(TP0, 7)
    assert not tails.found(TP0, 8)  # the agent took something: a new count
    assert not tails.found(TP0, 8)
    tails.clear(TP0)  # a check found it busy
    assert not tails.found(TP0, 8)
    # Partitions count apart.
    assert [tails.found(TP1, 3) for _ in range(2)] == [False, False]
    assert [tails.found(TP0, 8) for _ in range(2)] == [False, True]
    tails.reset()  # a rebalance
    assert not tails.found(TP1, 3)


def test_after_a_reset_the_stored_offset_says_where_to_go_on() -> None:
    stored = {TP0: 41}
    progress = SourceProgress(stored_last=stored.get)
    # Processed further than committed by a worker that crashed: resume after it.
    assert (progress.expected(TP0), progress.next_to_commit(TP0)) == (42, 42)
    assert progress.expected(TP1) is None  # nothing stored
    progress.take(TP0, [42, 43])
    assert (progress.expected(TP0), progress.next_to_commit(TP0)) == (44, 42)
    progress.reset()
    assert progress.next_to_commit(TP0) == 42


def test_partitions_are_independent_and_reset_forgets_all() -> None:
    progress = SourceProgress()
    progress.take(TP0, [1])
    progress.take(TP1, [100])
    progress.done(TP1, [100])
    assert (progress.next_to_commit(TP0), progress.next_to_commit(TP1)) == (1, 101)
    progress.reset()
    assert (progress.next_to_commit(TP0), progress.expected(TP1)) == (None, None)


class StubConsumer:
    """The parts of faust's consumer that commit_from_progress replaces or reads."""

    def __init__(self, assignment: set) -> None:
        self._assignment = assignment
        self._acked = defaultdict(list)
        self._acked_index = defaultdict(set)
        self._gap = defaultdict(list)
        self.forced: list = []

    def assignment(self) -> set:
        return self._assignment

    def _new_offset(self, tp):
        return 42  # faust's answer from its acknowledgements

    def _filter_tps_with_pending_acks(self, topics=None):
        return iter(tp for tp in self._acked if topics is None or tp in topics or tp.topic in topics)

    async def force_commit(self, *args, **kwargs) -> bool:
        self.forced.append(args)
        return True

    async def wait_empty(self) -> None:
        self.forced.append("waited")


def test_commits_follow_progress_for_the_chosen_topics_only() -> None:
    other = TopicPartition("inputs", 0)
    consumer = StubConsumer({TP0, TP1, other})
    consumer._acked[TP0] = [3, 4]
    consumer._acked[other] = [1]
    app = SimpleNamespace(consumer=consumer)
    progress = SourceProgress()
    progress.take(TP1, [7])
    progress.done(TP1, [7])
    commit_from_progress(app, {"events"}, progress.next_to_commit)

    # Every assigned partition of the chosen topics is considered, acknowledged or not.
    assert set(consumer._filter_tps_with_pending_acks()) == {TP0, TP1, other}
    assert set(consumer._filter_tps_with_pending_acks({"events"})) == {TP0, TP1}
    assert consumer._new_offset(TP1) == 8
    assert consumer._new_offset(TP0) is None  # acknowledged, but not finished by our account
    assert TP0 not in consumer._acked  # faust's list no longer grows for these
    assert consumer._new_offset(other) == 42
    # Installing twice changes nothing.
    commit_from_progress(app, {"inputs"}, lambda tp: 0)
    assert consumer._new_offset(other) == 42


def test_gate_holds_a_commit_until_running_batches_finish() -> None:
    async def scenario() -> list[str]:
        gate = BatchGate()
        order: list[str] = []
        release = asyncio.Event()

        async def batch(name: str, wait: bool) -> None:
            async with gate.batch(int(name == "b")):
                order.append(f"{name} start")
                if wait:
                    await release.wait()
                order.append(f"{name} end")

        async def commit() -> None:
            async with gate.closed():
                order.append("commit")

        first = asyncio.create_task(batch("a", wait=True))
        await asyncio.sleep(0)
        committing = asyncio.create_task(commit())
        await asyncio.sleep(0)
        second = asyncio.create_task(batch("b", wait=False))  # arrives while the commit waits
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(first, committing, second)
        return order

    assert asyncio.run(scenario()) == ["a start", "a end", "commit", "b start", "b end"]


def test_gated_commit_goes_through_the_gate() -> None:
    consumer = StubConsumer({TP0})
    gate = BatchGate()
    commit_from_progress(SimpleNamespace(consumer=consumer), {"events"}, lambda tp: None, gate)
    assert asyncio.run(consumer.force_commit("x")) is True
    assert consumer.forced == [("x",)]


def test_held_messages_are_let_go_before_a_rebalance_waits_for_acknowledgements() -> None:
    consumer = StubConsumer({TP0})
    calls: list[str] = []
    commit_from_progress(SimpleNamespace(consumer=consumer), {"events"}, lambda tp: None, before_rebalance=lambda: calls.append("let go"))
    asyncio.run(consumer.wait_empty())
    assert (calls, consumer.forced) == (["let go"], ["waited"])


def test_gate_runs_one_batch_at_a_time_per_partition() -> None:
    async def scenario() -> list[str]:
        gate = BatchGate()
        order: list[str] = []

        async def batch(name: str, partition: int) -> None:
            async with gate.batch(partition):
                order.append(f"{name} start")
                await asyncio.sleep(0.01)
                order.append(f"{name} end")

        await asyncio.gather(batch("p0 first", 0), batch("p0 second", 0), batch("p1", 1))
        return order

    order = asyncio.run(scenario())
    assert order.index("p0 first end") < order.index("p0 second start")
    assert order.index("p1 start") < order.index("p0 first end")  # other partitions overlap
