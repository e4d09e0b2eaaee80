"""A fetch that waits across a rebalance and returns, with records of the changelogs the
recovery has just sought, before the recovery resumes the flow (the timing that once
left a recovery waiting for good, stream/worker/fetch_fixes.py): the recovery still
completes, and the results equal `segments batch`. The worker is
tests/integration/apps/fetch_across_rebalance_worker.py, which forces that timing at its
first rebalance. Each of the two fixes is enough alone: the second one is also run
without the first. Without either, the recovery waits until the recovery watch reads
the stalled partitions again (that run shortens the watch's 60 s to 10); without the
watch's re-read too, it never ends."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from tests.integration.worker_harness import WorkerNamespace, batch_results, history_files

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

WORKER = Path(__file__).parent / "apps" / "fetch_across_rebalance_worker.py"
# How the app's NO_FETCH_IN_FLIGHT message starts (importing the app would patch faust here).
NO_FETCH_IN_FLIGHT = "NO FETCH IN FLIGHT at this rebalance"
UNTIL = "1998-07-01"

# The worker's environment: both fixes; only the getmany one (the waiting fetch takes
# the changelog records, faust drops them, the consumer is sent back for them); neither,
# and the recovery watch reads the stalled partitions again after 10 s instead of 60.
FIXES = {
    "both fixes": {"UNFIXED": ""},
    "only recovered_getmany": {"UNFIXED": "own_partition_set"},
    "neither, the recovery watch": {"UNFIXED": "1", "RECOVERY_REPORT_SECONDS": "10"},
}


def _timing_reached(ns: WorkerNamespace, rebalances: int, timeout: float = 60) -> bool:
    """Wait until the worker has held a fetch across a rebalance (True), or reported
    ``rebalances`` rebalances it could not hold (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = ns.worker_log.read_text(errors="replace")
        if "FETCH HELD across the rebalance" in log or "changelog partitions under recovery again" in log:
            return True
        if log.count(NO_FETCH_IN_FLIGHT) >= rebalances:
            return False
        time.sleep(0.2)
    raise AssertionError(f"no sign of the rebalance within {timeout} s:\n{ns.log_tail()}")


@pytest.mark.parametrize("worker_env", FIXES.values(), ids=FIXES.keys())
def test_a_recovery_gets_the_changelog_records_a_fetch_took_across_the_rebalance(
    kafka_bootstrap: str, unique_name, tmp_path: Path, worker_env: dict[str, str],
) -> None:
    history, (first_half, second_half) = history_files(tmp_path, 150, (1, 2))
    ns = WorkerNamespace(kafka_bootstrap, unique_name("fetchhold"), tmp_path, worker_command=[sys.executable, str(WORKER)],
                        worker_env=worker_env)
    try:
        ns.start_worker()
        # Idle afterwards: its fetch waits for records when the second worker joins.
        ns.cli("replay", str(first_half), "--wait", "--timeout", "120")
        extra, _ = ns.start_extra_worker("second")
        for attempt in range(1, 4):
            if _timing_reached(ns, attempt):
                break
            # No fetch was waiting when this rebalance began (1 CI run in about 6), or the
            # one waiting returned before it saw the hold (once in CI): make another, the
            # extra worker leaving or a new one joining.
            if extra is not None:
                extra.send_signal(signal.SIGTERM)
                assert extra.wait(timeout=60) == 0
                extra = None
            else:
                extra, _ = ns.start_extra_worker(f"again{attempt}")
        ns.cli("replay", str(second_half), "--until", UNTIL, "--wait", "--timeout", "120")

        log = ns.worker_log.read_text(errors="replace")
        # The timing intended: a fetch waited across the rebalance, or (once in CI, with a
        # fetch started just after the hold) faust dropped a recovery's changelog records.
        assert "FETCH HELD across the rebalance" in log or "changelog partitions under recovery again" in log, \
            "a fetch must have waited across the rebalance, or changelog records been dropped"
        if worker_env["UNFIXED"] == "1":
            assert "got no record for 10 s: reading them again" in log
        else:
            assert "table recovery running for over" not in log
        if worker_env["UNFIXED"] == "own_partition_set":
            assert "changelog partitions under recovery again" in log, "faust must have dropped them"

        snapshot = tmp_path / "snapshot.jsonl"
        ns.cli("snapshot", "--out", str(snapshot))
        batch_profiles, batch_changes = batch_results(history, UNTIL, tmp_path)
        assert snapshot.read_bytes().splitlines() == batch_profiles, ns.overtaken()
        assert ns.first_changes_by_customer() == batch_changes
    finally:
        ns.close()
