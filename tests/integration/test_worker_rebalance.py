"""Two workers of one app share the partitions; one joins mid-replay and leaves again
(two rebalances, state moving through the changelogs both ways): the results equal
`segments batch`, every change delivered; under exactly-once, each exactly once."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.integration.worker_harness import WorkerNamespace, batch_results, history_files, overview

pytestmark = pytest.mark.integration

UNTIL = "1998-07-01"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_worker_joining_and_leaving_mid_replay(kafka_bootstrap: str, unique_name, tmp_path: Path, guarantee: str) -> None:
    history, parts = history_files(tmp_path, 450, (1, 3), (2, 3))

    ns = WorkerNamespace(kafka_bootstrap, unique_name("rebalance"), tmp_path, guarantee=guarantee)
    try:
        ns.start_worker()
        ns.cli("replay", str(parts[0]), "--wait", "--timeout", "240")
        second, second_url = ns.start_extra_worker("second")
        ns.cli("replay", str(parts[1]), "--wait", "--timeout", "240")
        # Both took part: each owns some of the events topic's partitions.
        owned = [len(overview(url)["clocks"]) for url in (ns.web_url, second_url)]
        assert sorted(owned) == [2, 2], owned
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
        ns.cli("replay", str(parts[2]), "--until", UNTIL, "--wait", "--timeout", "240")

        snapshot = tmp_path / "snapshot.jsonl"
        ns.cli("snapshot", "--out", str(snapshot))
        batch_profiles, batch_changes = batch_results(history, UNTIL, tmp_path)
        assert snapshot.read_bytes().splitlines() == batch_profiles, ns.overtaken()
        assert ns.first_changes_by_customer() == batch_changes, "every change delivered, in order, across both rebalances"
        if guarantee == "exactly_once":
            committed = ns.changes_by_customer(isolation_level="read_committed")
            assert committed == batch_changes, "a read_committed consumer sees each change once, across both rebalances"
        # The census moved with the partitions: the worker left alone counts every customer.
        assert overview(ns.web_url)["customers"] == len(batch_profiles)
    finally:
        ns.close()
