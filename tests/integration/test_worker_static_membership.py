"""A worker with a group_instance_id (static membership), SIGKILLed mid-replay and
restarted at once, takes its partitions back without a rebalance: the group stays in
the generation it was in, and the results equal `segments batch`."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from tests.integration.worker_harness import WorkerNamespace, batch_results, history_files, overview

pytestmark = pytest.mark.integration

UNTIL = "1998-07-01"


@pytest.mark.timeout(300)
def test_a_static_member_restarted_after_a_crash_rejoins_without_a_rebalance(kafka_bootstrap: str, unique_name, tmp_path: Path) -> None:
    history, (first_half, second_half) = history_files(tmp_path, 300, (1, 2))

    ns = WorkerNamespace(kafka_bootstrap, unique_name("static"), tmp_path, worker_settings='group_instance_id = "worker-1"')
    try:
        ns.start_worker()
        ns.cli("replay", str(first_half), "--wait", "--timeout", "240")
        assert ns.stop_worker(signal.SIGKILL) == -signal.SIGKILL
        ns.start_worker()
        # Without static membership the new process joins as a new member, and the group
        # rebalances (a new generation) once the killed one's session has expired.
        generations = re.findall(r"Joined group '[^']+' \(generation (\d+)\)", ns.worker_log.read_text(errors="replace"))
        assert len(generations) == 2 and generations[0] == generations[1], generations
        ns.cli("replay", str(second_half), "--until", UNTIL, "--wait", "--timeout", "240")

        batch_profiles, batch_changes = batch_results(history, UNTIL, tmp_path)
        snapshot = tmp_path / "snapshot.jsonl"
        ns.cli("snapshot", "--out", str(snapshot))
        assert snapshot.read_bytes().splitlines() == batch_profiles, ns.overtaken()
        assert overview(ns.web_url)["customers"] == len(batch_profiles)
        assert ns.first_changes_by_customer() == batch_changes, "every change delivered"
    finally:
        ns.close()
