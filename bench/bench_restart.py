"""How long a worker is down when it restarts: start-up to "Ready", and the table
recovery within it.

Starts a real `segments worker --clock event` (fresh app id and topics) on the broker in
KAFKA_BOOTSTRAP_SERVERS (or the local one), replays the first N CDNOW customers' orders
with --wait, then restarts the worker --restarts times, alternating a clean stop
(SIGTERM: its RocksDB stays) and a crash (SIGKILL: the next start rebuilds its state
from the changelogs). For each restart it prints the seconds from launch to faust's
"Ready", and from each recovery's "Resuming flow" to "Recovery complete" in the worker's
log. After a SIGKILL, the launch-to-Ready time includes the group's wait for the killed
member's session to expire (10 s in this harness). A worker that exits during its start
is reported as such, and started again.

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 .venv/bin/python bench/bench_restart.py --guarantee exactly_once

To compare two trees, run it with the other tree first on ``PYTHONPATH`` (the workers
import whichever ``stream`` package Python finds first). No assertions: numbers only.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # after PYTHONPATH: another tree put first there is the one measured

from stream.demo.cdnow import cdnow_orders, time_ordered, write_jsonl  # noqa: E402
from tests.integration.worker_harness import WorkerNamespace  # noqa: E402

_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] \[(\d+)\] .*?(Resuming flow|Recovery complete)")


def recoveries(log_text: str, pid: int) -> list[float]:
    """Seconds from each "Resuming flow" to the "Recovery complete" after it, in ``pid``'s
    lines (a restart after SIGKILL recovers twice: once on joining, once more when the
    killed member's session expires)."""
    durations = []
    resumed = None
    for line in log_text.splitlines():
        match = _STAMP.match(line)
        if not match or int(match.group(2)) != pid:
            continue
        at = _dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if match.group(3) == "Resuming flow":
            resumed = at
        elif resumed is not None:
            durations.append(at - resumed)
            resumed = None
    return durations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--guarantee", default="exactly_once", choices=["at_least_once", "exactly_once"])
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument("--group-instance-id", help="run the worker as a static group member with this id")
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        history = tmp / "history.jsonl"
        events = time_ordered(list(cdnow_orders(limit_customers=args.customers)))
        write_jsonl(events, history)
        static = f'group_instance_id = "{args.group_instance_id}"' if args.group_instance_id else ""
        ns = WorkerNamespace(bootstrap, f"bench-restart-{int(time.time())}", tmp, guarantee=args.guarantee, worker_settings=static)
        try:
            ns.start_worker()
            ns.cli("replay", str(history), "--wait", timeout=1800)
            for number in range(args.restarts):
                how = signal.SIGTERM if number % 2 == 0 else signal.SIGKILL
                ns.stop_worker(how)
                launched = time.monotonic()
                try:
                    ns.start_worker()
                except AssertionError as exc:  # the worker exited during its start
                    cause = "ConsistencyError" if "ConsistencyError" in str(exc) else "see the worker log"
                    rows.append((how.name, f"exited during start-up ({cause})", ""))
                    ns.start_worker()
                    continue
                ready = time.monotonic() - launched
                seconds = recoveries(ns.worker_log.read_text(errors="replace"), ns.worker.pid)
                rows.append((how.name, f"{ready:.1f}", " + ".join(f"{value:.1f}" for value in seconds)))
        finally:
            ns.close()
        code = __import__("stream").__file__
    print(f"machine: nproc {os.cpu_count()}, {platform.machine()}, CPython {platform.python_version()}")
    membership = f"static member {args.group_instance_id!r}" if args.group_instance_id else "dynamic membership"
    print(f"history: first {args.customers} CDNOW customers, {len(events)} events; {args.guarantee}; {membership}; code: {code}")
    print(f"{'stop':<10}{'launch to Ready (s)':>40}   recoveries (s)")
    for how, ready, recovery in rows:
        print(f"{how:<10}{ready:>40}   {recovery}")


if __name__ == "__main__":
    main()
