"""A rebalance that starts while the intake is in the middle of a batch: the events the
merger held are let go of (read again after the rebalance), and the batch in progress
must not forward its later events ahead of them (stream/worker/app.py,
``intake_halted``). tests/integration/apps/intake_across_rebalance_worker.py holds the
intake's batch until the rebalance has let go of the held events.

Without the halt (``intake_halted[0] = True`` left out of ``let_go_of_held_events``) this
test failed 4 runs of 4: the held batch's events were forwarded ahead of the earlier
events of their partition read again after the rebalance, and the customer agent took
those for late events."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.integration.worker_harness import WorkerNamespace, batch_results, history_files

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

WORKER = Path(__file__).parent / "apps" / "intake_across_rebalance_worker.py"
UNTIL = "1998-07-01"
HOLD_FROM = "1997-06-01"


def test_a_batch_in_progress_at_a_rebalance_forwards_nothing_ahead_of_the_held_events(
    kafka_bootstrap: str, unique_name, tmp_path: Path,
) -> None:
    history, (first_part, rest) = history_files(tmp_path, 300, (2, 3))
    ns = WorkerNamespace(kafka_bootstrap, unique_name("intakehold"), tmp_path, worker_command=[sys.executable, str(WORKER)],
                        worker_settings="batch_size = 50", worker_env={"HOLD_ONCE_FILE": str(tmp_path / "held"), "HOLD_FROM": HOLD_FROM})
    try:
        ns.start_worker()
        ns.cli("replay", str(first_part))
        ns.wait_for_log("INTAKE HOLDING", 60)
        ns.start_extra_worker("second")
        ns.wait_for_log("INTAKE HELD", 60)
        ns.cli("replay", str(rest), "--until", UNTIL, "--wait", "--timeout", "120")
        # The timing intended: the rebalance had let go of everything the merger held.
        assert "INTAKE HELD across the rebalance: app.rebalancing=True, 0 held" in ns.worker_log.read_text(errors="replace")

        snapshot = tmp_path / "snapshot.jsonl"
        ns.cli("snapshot", "--out", str(snapshot))
        batch_profiles, batch_changes = batch_results(history, UNTIL, tmp_path)
        assert snapshot.read_bytes().splitlines() == batch_profiles, ns.overtaken()
        assert ns.first_changes_by_customer() == batch_changes, "no event forwarded out of time order"
    finally:
        ns.close()
