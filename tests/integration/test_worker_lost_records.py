"""Records faust fetched and never delivered to an agent are processed all the same,
also at the end of a partition, where no later record reveals the hole: a real worker
whose consumer drops every orders record for its first seconds
(tests/integration/apps/lossy_worker.py) still gives `segments batch`'s results."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from stream.demo.cdnow import cdnow_orders, time_ordered, write_jsonl
from tests.integration.worker_harness import WorkerNamespace, batch_results

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

LOSSY_WORKER = Path(__file__).parent / "apps" / "lossy_worker.py"
UNTIL = "1998-07-01"


def test_orders_lost_at_the_end_of_their_partitions_are_processed(kafka_bootstrap: str, unique_name, tmp_path: Path) -> None:
    events = time_ordered(list(cdnow_orders(limit_customers=80)))
    history = tmp_path / "history.jsonl"
    write_jsonl(events, history)
    prefix = unique_name("lost")
    ns = WorkerNamespace(
        kafka_bootstrap, prefix, tmp_path,
        worker_command=[sys.executable, str(LOSSY_WORKER)],
        # Longer than the replay takes: every orders record is lost, none comes after.
        worker_env={"LOSE_TOPIC": f"{prefix}-orders", "LOSE_SECONDS": "6"},
    )
    try:
        ns.start_worker()
        ns.cli("replay", str(history), "--until", UNTIL, "--wait", "--timeout", "120")

        log = ns.worker_log.read_text(errors="replace")
        # faust logs what the launcher prints.
        lost_partitions = {int(partition) for partition in re.findall(r"\bLOST (\d+) \d+", log)}
        assert lost_partitions == {0, 1, 2, 3}, "the worker must have lost records on every orders partition"
        assert "never reached the agent; fetching them again" in log

        snapshot = tmp_path / "snapshot.jsonl"
        ns.cli("snapshot", "--out", str(snapshot))
        batch_profiles, batch_changes = batch_results(history, UNTIL, tmp_path)
        assert snapshot.read_bytes().splitlines() == batch_profiles, ns.overtaken()
        assert ns.changes_by_customer() == batch_changes
    finally:
        ns.close()
