"""The lag status rules of stream/ops/lag_status.py, each at its edges."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import stream.ops.lag_status as lag_status
from stream.ops.lag_status import (
    CommitAge, GroupSnapshot, Owner, Sample, Status, commit_age_from_samples, evaluate_group,
    evaluate_partition, exit_code,
)

STOP_AFTER = 300.0
RECENT = CommitAge(1.0, "commit-log")


def window(*points: tuple[int | None, int | None], start: int | None = 0, every: float = 1.0) -> list[Sample]:
    """Samples ``every`` seconds apart from (committed, end) pairs."""
    return [Sample(at=1000.0 + index * every, committed=c, end=e, start=start) for index, (c, e) in enumerate(points)]


def status(samples: list[Sample], *, owned: bool | None = True, age: CommitAge | None = RECENT, stop_after: float = STOP_AFTER):
    return evaluate_partition(samples, owned=owned, commit_age=age, stop_after=stop_after)


# Rule 1: ERR


def test_err_when_the_latest_offsets_are_unreadable() -> None:
    samples = window((5, 10), (6, 10))
    samples.append(Sample(1002.0, None, None, error="log offsets unreadable: UnknownTopicOrPartitionError"))
    result = status(samples)
    assert result.status is Status.ERR and "UnknownTopicOrPartition" in result.reason


def test_err_when_the_log_end_is_unknown() -> None:
    assert status(window((5, None))).status is Status.ERR


def test_committed_at_the_log_end_is_fine_one_beyond_is_err() -> None:
    assert status(window((10, 10))).status is Status.OK
    beyond = status(window((11, 10)))
    assert beyond.status is Status.ERR and "beyond the log end" in beyond.reason


def test_committed_at_the_log_start_is_fine_one_below_is_err() -> None:
    assert status(window((3, 3), start=3)).status is Status.OK
    below = status(window((2, 9), start=3))
    assert below.status is Status.ERR and "below the log start" in below.reason


def test_an_unreadable_earlier_sample_is_ignored_not_err() -> None:
    samples = [Sample(1000.0, None, None, error="timeout"), *window((10, 10))]
    assert status(samples).status is Status.OK


def test_err_beats_everything_even_lag_zero_earlier() -> None:
    assert status(window((10, 10), (11, 10)), owned=False).status is Status.ERR


# Rule 2: OK when lag is 0 in any sample


def test_ok_when_caught_up_even_if_nobody_owns_it_and_no_recent_commit() -> None:
    old = CommitAge(10_000.0, "commit-log")
    result = status(window((5, 7), (7, 7)), owned=False, age=old)
    assert result.status is Status.OK and result.reason == "caught up"


def test_ok_when_lag_was_zero_in_the_oldest_sample_of_the_window() -> None:
    # Rule 2 comes before STOP: a zero in the window keeps the partition OK.
    result = status(window((7, 7), (7, 9), (7, 12)), owned=False, age=CommitAge(10_000.0, "commit-log"))
    assert result.status is Status.OK and "within the window" in result.reason


def test_a_zero_lag_only_in_an_invalid_sample_does_not_count() -> None:
    samples = [Sample(1000.0, 7, 7, error="timeout"), *window((7, 9), (7, 12))]
    assert status(samples, owned=False).status is Status.STOP


# Rule 3: STOP


def test_stop_when_no_live_member_owns_a_lagging_partition() -> None:
    result = status(window((5, 6)), owned=False)
    assert result.status is Status.STOP and "no live member" in result.reason


def test_unknown_ownership_is_not_stop() -> None:
    assert status(window((5, 6), (6, 8), (7, 9)), owned=None).status is Status.OK


def test_stop_only_when_the_last_commit_is_strictly_older_than_stop_after() -> None:
    moving = window((5, 6), (6, 8), (7, 9))
    assert status(moving, age=CommitAge(STOP_AFTER, "commit-log")).status is Status.OK
    late = status(moving, age=CommitAge(STOP_AFTER + 0.001, "commit-log"))
    assert late.status is Status.STOP and "no commit for 300s" in late.reason


def test_no_commit_since_the_commit_log_was_read_from_is_stop() -> None:
    result = status(window((5, 6), (5, 6)), age=CommitAge(400.0, "commit-log", at_least=True))
    assert result.status is Status.STOP and "at least 400s" in result.reason


def test_both_stop_reasons_are_given() -> None:
    result = status(window((5, 6)), owned=False, age=CommitAge(301.0, "commit-log"))
    assert "no live member" in result.reason and "no commit for 301s" in result.reason


def test_without_commit_times_the_unchanged_span_of_the_samples_decides() -> None:
    # Fallback: the committed offset unchanged for exactly stop_after is not yet STOP...
    exactly = window((5, 6), (5, 7), (5, 8), every=STOP_AFTER / 2)
    assert status(exactly, age=None).status is Status.STALL
    # ...a little longer is, and the reason says how the age was measured.
    longer = window((5, 6), (5, 7), (5, 8), every=STOP_AFTER / 2 + 0.01)
    result = status(longer, age=None)
    assert result.status is Status.STOP and "committed offset unchanged for at least" in result.reason
    assert result.commit_age is not None and result.commit_age.source == "samples"


def test_commit_log_times_win_over_the_unchanged_span() -> None:
    # Recommitting the same offset for longer than stop_after is a stall, not a stop.
    samples = window((5, 6), (5, 7), (5, 8), every=STOP_AFTER)
    assert status(samples, age=RECENT).status is Status.STALL


def test_commit_age_from_samples_counts_only_the_trailing_run_of_the_latest_offset() -> None:
    samples = window((5, 9), (6, 9), (6, 9), (6, 9), every=10.0)
    age = commit_age_from_samples(samples)
    assert age == CommitAge(20.0, "samples", at_least=True)
    assert commit_age_from_samples([Sample(1.0, None, None, error="x")]) is None


# Rule 4: STALL


def test_stall_needs_two_samples_with_the_same_committed_offset() -> None:
    assert status(window((5, 6))).status is Status.OK
    result = status(window((5, 6), (5, 6)))
    assert result.status is Status.STALL and "stuck at 5" in result.reason


def test_a_single_move_in_the_window_is_not_stall() -> None:
    assert status(window((5, 9), (5, 9), (6, 9))).status is Status.OK


def test_stall_ignores_unreadable_samples() -> None:
    samples = window((5, 9), (5, 9))
    samples.insert(1, Sample(1000.5, None, None, error="timeout"))
    assert status(samples).status is Status.STALL


# Rule 5: WARN


def test_warn_when_the_offset_moves_but_lag_grows_at_every_step() -> None:
    result = status(window((5, 6), (6, 8), (7, 10)))
    assert result.status is Status.WARN and "1 → 2 → 3" in result.reason


def test_warn_needs_three_samples() -> None:
    assert status(window((5, 6), (6, 8))).status is Status.OK


def test_lag_that_stays_level_once_is_not_warn() -> None:
    assert status(window((5, 6), (6, 8), (7, 9))).status is Status.OK


def test_lag_that_shrinks_once_is_not_warn() -> None:
    assert status(window((5, 8), (6, 8), (7, 10), (8, 12))).status is Status.OK


def test_growing_lag_with_an_unmoving_offset_is_stall_not_warn() -> None:
    assert status(window((5, 6), (5, 8), (5, 10))).status is Status.STALL


# Rule 6: otherwise OK


def test_ok_while_consuming_with_some_lag() -> None:
    result = status(window((5, 9), (8, 11), (10, 12)))
    assert result.status is Status.OK and result.reason == "consuming" and result.lag == 2


def test_an_owned_partition_never_committed_is_ok_without_lag() -> None:
    result = status(window((None, 40)))
    assert result.status is Status.OK and result.lag is None


# Groups


OWNER = Owner("m-1", "client-a", "/127.0.0.1")


def snapshots(points: list[dict[tuple[str, int], tuple[int | None, int]]], *, owners=None, state="Stable", every=1.0):
    result = []
    for index, offsets in enumerate(points):
        committed = {tp: c for tp, (c, _) in offsets.items() if c is not None}
        ends = {tp: e for tp, (_, e) in offsets.items()}
        result.append(GroupSnapshot("g", 1000.0 + index * every, committed=committed, ends=ends,
                                    starts={tp: 0 for tp in offsets}, owners=owners, state=state, members=1))
    return result


def test_group_status_is_its_worst_partition() -> None:
    a, b, c = ("t", 0), ("t", 1), ("t", 2)
    owners = {a: OWNER, b: OWNER, c: OWNER}
    history = snapshots([{a: (5, 5), b: (5, 6), c: (1, 5)}, {a: (6, 6), b: (5, 7), c: (3, 8)}, {a: (7, 7), b: (5, 9), c: (4, 12)}], owners=owners)
    result = evaluate_group(history, stop_after=STOP_AFTER, last_commits={a: 1001.0, b: 1001.0, c: 1001.0}, commit_log_from=0.0)
    assert [p.result.status for p in result.partitions] == [Status.OK, Status.STALL, Status.WARN]
    assert result.status is Status.STALL and "t[1]" in result.reason
    assert result.lag() == 4 + 8


def test_status_order_is_err_stop_stall_warn_ok() -> None:
    assert list(Status) == sorted(Status) and [s.name for s in sorted(Status)] == ["OK", "WARN", "STALL", "STOP", "ERR"]


def test_a_group_with_no_offsets_and_no_assignment_is_err() -> None:
    result = evaluate_group([GroupSnapshot("typo", 1000.0, owners={}, state="Dead")], stop_after=STOP_AFTER)
    assert result.status is Status.ERR and result.partitions == ()


def test_an_unreadable_group_keeps_its_last_known_partitions_in_err() -> None:
    tp = ("t", 0)
    history = [*snapshots([{tp: (1, 2)}], owners={tp: OWNER}), GroupSnapshot("g", 1002.0, error="committed offsets unreadable: timeout")]
    result = evaluate_group(history, stop_after=STOP_AFTER)
    assert result.status is Status.ERR and [(p.topic, p.partition, p.result.status) for p in result.partitions] == [("t", 0, Status.ERR)]


def test_members_without_the_partition_mean_stop_but_rebalancing_means_unknown() -> None:
    tp = ("t", 0)
    empty = evaluate_group(snapshots([{tp: (1, 5)}], owners={}, state="Empty"), stop_after=STOP_AFTER, last_commits={tp: 1000.0})
    assert empty.status is Status.STOP
    rebalancing = evaluate_group(snapshots([{tp: (1, 5)}], owners={}, state="PreparingRebalance"), stop_after=STOP_AFTER, last_commits={tp: 1000.0})
    assert rebalancing.status is Status.OK
    undescribed = evaluate_group(snapshots([{tp: (1, 5)}], owners=None), stop_after=STOP_AFTER, last_commits={tp: 1000.0})
    assert undescribed.status is Status.OK


def test_commit_ages_come_from_the_commit_log_or_else_from_the_samples() -> None:
    tp = ("t", 0)
    history = snapshots([{tp: (1, 5)}, {tp: (1, 6)}], owners={tp: OWNER})
    logged = evaluate_group(history, stop_after=10, last_commits={tp: 995.0}, commit_log_from=0.0)
    assert logged.commit_time_source == "commit-log"
    assert logged.partitions[0].result.commit_age == CommitAge(6.0, "commit-log")
    absent = evaluate_group(history, stop_after=10, last_commits={}, commit_log_from=900.0)
    assert absent.partitions[0].result.commit_age == CommitAge(101.0, "commit-log", at_least=True)
    assert absent.status is Status.STOP
    fallback = evaluate_group(history, stop_after=10, last_commits=None)
    assert fallback.commit_time_source == "samples" and fallback.partitions[0].result.commit_age == CommitAge(1.0, "samples", at_least=True)
    assert fallback.status is Status.STALL


def test_assigned_partitions_without_commits_are_listed_and_ok() -> None:
    done, changelog = ("in", 0), ("in-changelog", 0)
    history = snapshots([{done: (4, 4), changelog: (None, 90)}], owners={done: OWNER, changelog: OWNER})
    result = evaluate_group(history, stop_after=STOP_AFTER, last_commits={done: 1000.0})
    assert [(p.topic, p.latest.committed, p.result.status) for p in result.partitions] == [("in", 4, Status.OK), ("in-changelog", None, Status.OK)]


def test_a_source_partition_never_committed_has_lag_from_the_log_start() -> None:
    # The worker stopped before it ever committed `carts`; events arrived there since.
    carts, orders = ("carts", 0), ("orders", 0)
    history = [
        GroupSnapshot("g", 1000.0 + index, committed={orders: 10}, ends={orders: 10, carts: 7}, starts={orders: 0, carts: 2},
                      owners={}, state="Empty", members=0, sources=frozenset({carts, orders}))
        for index in range(2)
    ]
    result = evaluate_group(history, stop_after=STOP_AFTER, last_commits={orders: 999.0})
    by_topic = {p.topic: p for p in result.partitions}
    assert by_topic["carts"].result.status is Status.STOP and by_topic["carts"].result.lag == 5
    assert "never committed" in by_topic["carts"].result.reason and "offset 2" in by_topic["carts"].result.reason
    assert by_topic["orders"].result.status is Status.OK
    assert result.status is Status.STOP and result.lag() == 5


def test_a_source_partition_never_committed_is_ok_when_empty_or_owned() -> None:
    carts = ("carts", 0)

    def evaluated(end: int, owners: dict) -> object:
        snapshot = GroupSnapshot("g", 1000.0, ends={carts: end}, starts={carts: 3}, owners=owners, state="Stable",
                                 members=1, sources=frozenset({carts}))
        return evaluate_group([snapshot], stop_after=STOP_AFTER, last_commits={}).partitions[0].result

    empty = evaluated(3, {})
    assert empty.status is Status.OK and empty.lag == 0
    owned = evaluated(9, {carts: OWNER})
    assert owned.status is Status.OK and owned.lag == 6 and owned.reason == "not committed by the group yet"


def test_a_group_that_never_ran_is_err_and_lists_what_waits_on_its_sources() -> None:
    carts = ("carts", 0)
    snapshot = GroupSnapshot("g", 1000.0, ends={carts: 4}, starts={carts: 0}, owners={}, state="Dead",
                             sources=frozenset({carts}))
    result = evaluate_group([snapshot], stop_after=STOP_AFTER, last_commits={})
    assert result.status is Status.ERR and "never ran" in result.reason
    assert [(p.topic, p.result.lag, p.result.status) for p in result.partitions] == [("carts", 4, Status.STOP)]
    assert result.lag() == 4


def test_only_source_partitions_count_lag_without_a_commit() -> None:
    changelog = ("customers-changelog", 0)
    snapshot = GroupSnapshot("g", 1000.0, ends={changelog: 50}, starts={changelog: 0}, owners={}, state="Empty", members=0)
    result = evaluate_group([snapshot], stop_after=STOP_AFTER)
    assert result.status is Status.ERR  # nothing committed, nothing assigned, no sources: as before
    snapshot = GroupSnapshot("g", 1000.0, ends={changelog: 50}, starts={changelog: 0}, owners={changelog: OWNER},
                             state="Stable", members=1)
    [partition] = evaluate_group([snapshot], stop_after=STOP_AFTER).partitions
    assert partition.result.status is Status.OK and partition.result.lag is None


# Exit codes


@pytest.mark.parametrize(
    ("statuses", "code"),
    [([], 0), ([Status.OK], 0), ([Status.OK, Status.WARN], 1), ([Status.WARN, Status.STALL], 2), ([Status.STOP], 2), ([Status.ERR, Status.OK], 2)],
)
def test_exit_code(statuses: list[Status], code: int) -> None:
    assert exit_code(statuses) == code


def test_the_evaluator_imports_no_kafka_client() -> None:
    tree = ast.parse(Path(lag_status.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] in {"kafka", "aiokafka", "faust"}}
