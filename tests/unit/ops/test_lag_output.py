"""What `segments lag` prints for an evaluation: the --json document and the table."""

from __future__ import annotations

from rich.console import Console

from stream.cli.lag import render, to_json
from stream.ops.lag_status import GroupSnapshot, Owner, evaluate_group

OWNER = Owner("faust-0.15.3-abc", "faust-0.15.3", "/10.0.0.7")


def history() -> list[GroupSnapshot]:
    lagging, changelog = ("orders", 0), ("customers-changelog", 0)
    return [
        GroupSnapshot("segments", 1000.0 + i, committed={lagging: 40}, ends={lagging: 50 + i, changelog: 9},
                      starts={lagging: 0, changelog: 0}, owners={lagging: OWNER, changelog: OWNER}, state="Stable", members=1)
        for i in range(3)
    ]


def test_json_says_when_commit_times_come_from_the_samples() -> None:
    evaluation = evaluate_group(history(), stop_after=300, last_commits=None)
    document = to_json([evaluation], stop_after=300, interval=1.0, commit_log_error="__consumer_offsets unreadable: TopicAuthorizationFailedError")
    assert document["status"] == "STALL" and document["exit_code"] == 2
    [group] = document["groups"]
    assert group["commit_times"]["source"] == "samples"
    assert "TopicAuthorizationFailed" in group["commit_times"]["error"] and "lower bound" in group["commit_times"]["note"]
    assert group["lag"] == 12 and group["samples"] == 3
    lagging = next(p for p in group["partitions"] if p["topic"] == "orders")
    assert lagging["lags"] == [10, 11, 12] and lagging["status"] == "STALL"
    assert lagging["owner"] == {"member_id": "faust-0.15.3-abc", "client_id": "faust-0.15.3", "host": "/10.0.0.7"}
    assert lagging["commit_time_source"] == "samples" and lagging["seconds_since_commit"] == 2.0
    assert lagging["seconds_since_commit_at_least"] is True


def test_json_with_commit_log_times_has_no_fallback_note() -> None:
    evaluation = evaluate_group(history(), stop_after=300, last_commits={("orders", 0): 1001.5}, commit_log_from=0.0)
    [group] = to_json([evaluation], stop_after=300, interval=1.0, commit_log_error=None)["groups"]
    assert group["commit_times"] == {"source": "commit-log"}


def test_the_table_hides_never_committed_partitions_unless_asked() -> None:
    evaluation = evaluate_group(history(), stop_after=300, last_commits={("orders", 0): 1001.5}, commit_log_from=0.0)
    console = Console(width=200, record=True)
    console.print(render([evaluation], show_all=False, commit_log_error=None))
    text = console.export_text()
    assert "faust-0.15.3@10.0.0.7" in text and "STALL" in text and "customers-changelog" not in text
    assert "1 partition(s) without a committed offset or lag not shown" in text
    console = Console(width=200, record=True)
    console.print(render([evaluation], show_all=True, commit_log_error=None))
    assert "customers-changelog" in console.export_text()
