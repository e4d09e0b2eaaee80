"""Clean restarts of an exactly-once worker: each recovers from where its changelogs
really end (stream/worker/exactly_once_recovery.py, fix 1).

Without the fix, faust took the end of each changelog partition from aiokafka's cached
last stable offset, unknown until the partition is fetched, as "ends at -1": in 8 clean
restarts of the tree before it, 5 started that way and 3 crashed at start with
ConsistencyError; the start after such a crash (local state wiped, as after any unclean
stop) then recovered nothing and ran with empty tables."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from stream.demo.cdnow import cdnow_orders, time_ordered, write_jsonl
from tests.integration.worker_harness import WorkerNamespace, batch_results, overview

pytestmark = pytest.mark.integration

RESTARTS = 2


def changelog_ends_in_last_recovery(log_text: str) -> list[str]:
    """The "highwater" cells of faust's last "Highwater for active changelog partitions" table."""
    table = log_text[log_text.rindex("Highwater for active changelog partitions"):]
    table = table[: table.index("Reading Starts At")]
    return [row.rstrip(" |").rsplit("|", 1)[-1].strip() for row in table.splitlines() if row.startswith("| ") and "highwater" not in row]


@pytest.mark.timeout(300)
def test_every_clean_restart_recovers_to_the_changelogs_real_end(kafka_bootstrap: str, unique_name, tmp_path: Path) -> None:
    events = time_ordered(list(cdnow_orders(limit_customers=300)))
    history = tmp_path / "history.jsonl"
    write_jsonl(events, history)
    until = events[-1]["occurred_at"]
    batch_profiles, _ = batch_results(history, until, tmp_path)

    ns = WorkerNamespace(kafka_bootstrap, unique_name("restart"), tmp_path, guarantee="exactly_once")
    try:
        ns.start_worker()
        ns.cli("replay", str(history), "--until", until, "--wait", "--timeout", "240")
        for restart in range(RESTARTS):
            assert ns.stop_worker(signal.SIGTERM) == 0
            ns.start_worker()  # fails if the worker exits, e.g. on faust's ConsistencyError
            ends = changelog_ends_in_last_recovery(ns.worker_log.read_text(errors="replace"))
            # 4 tables x 4 partitions, every one written to by the replay.
            assert len(ends) == 16 and "-1" not in ends, f"restart {restart}: changelog ends {ends}"
            # The worker's own tables hold every customer (the snapshot reads the changelogs).
            assert overview(ns.web_url)["customers"] == len(batch_profiles), f"restart {restart}"
        snapshot = tmp_path / "snapshot.jsonl"
        ns.cli("snapshot", "--out", str(snapshot))
        assert snapshot.read_bytes().splitlines() == batch_profiles, ns.overtaken()
    finally:
        ns.close()
