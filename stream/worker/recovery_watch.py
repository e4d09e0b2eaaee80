"""A report for the rare table recovery that never ends.

Once (tests/integration/test_worker_rebalance.py, run after the SIGKILL tests in one
pytest run; 12 runs of it alone passed), a worker's recovery after a rebalance received
no changelog record for minutes after "Resuming flow...": something in faust's consumer
stopped handing messages over. It has not been reproduced on demand. When a recovery outlasts
RECOVERY_REPORT_SECONDS, this logs where every asyncio task of the process waits, once
per recovery: the message loop's stack names the cause. Stacks carry code locations
only, no values (no customer data)."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from typing import Any

log = logging.getLogger("stream.worker.recovery_watch")

RECOVERY_REPORT_SECONDS = 60.0
CHECK_SECONDS = 5.0


class RecoveryWatch:
    """Pure bookkeeping: when the current recovery started, and whether it was reported."""

    def __init__(self, report_after: float = RECOVERY_REPORT_SECONDS) -> None:
        self.report_after = report_after
        self._since: float | None = None
        self._reported = False

    def due(self, in_recovery: bool, now: float) -> bool:
        """True once per recovery, when it has lasted ``report_after`` seconds."""
        if not in_recovery:
            self._since, self._reported = None, False
            return False
        if self._since is None:
            self._since = now
        if self._reported or now - self._since < self.report_after:
            return False
        self._reported = True
        return True


def task_stacks() -> str:
    """Where every task of the running loop waits."""
    out = io.StringIO()
    for task in asyncio.all_tasks():
        out.write(f"--- {task.get_name()}: {task.get_coro()!r}\n")
        task.print_stack(limit=12, file=out)
    return out.getvalue()


def watch_recovery(app: Any) -> None:
    """Add the report to a faust app."""
    watch = RecoveryWatch()

    @app.timer(CHECK_SECONDS)
    async def report_long_recovery() -> None:
        if watch.due(app.in_recovery, time.monotonic()):
            log.warning("table recovery running for over %.0f s; where every task waits:\n%s",
                        watch.report_after, task_stacks())
