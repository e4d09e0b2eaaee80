"""A real worker at N customers (default 1,000,000): its RSS and state folder, day
rollovers against the customers they change, and a restore from the changelogs.

`bench_state_scale.py` measures the worker's storage path in a process of its own; this
one runs `segments worker --clock event` (fresh app id and topics, 4 partitions) on the
broker in KAFKA_BOOTSTRAP_SERVERS (or the local one) with the same load: each customer
gets one order, spread evenly over --days, published in time order as `segments replay`
does. While the worker takes them its resident memory (`VmRSS`) is sampled. Then:

- the worker's RSS, state folder and `/metrics` (customers, pending timers, RocksDB
  memory) once it has processed everything;
- rollovers: a clock tick to a later midnight on every partition (as `segments replay
  --until` sends), each timed from the tick's publication to the broker timestamp of the
  last change it caused, with the worker's CPU meanwhile, beside the changes;
- a restore: the worker stopped, its state folder deleted (a replacement machine), and
  started again; timed until `/readyz` says its tables are recovered, with the RSS
  after. ``--settle S`` waits S seconds before it, for the broker's log cleaner to
  compact what the changelogs' closed segments hold (``changelog_segment_minutes``); the
  changelogs' size on the local broker's disk is reported (when it is the one used).

    .venv/bin/python bench/bench_worker_scale.py --customers 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from kafka import KafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_stream_vs_batch import publish  # noqa: E402
from bench.proc_stats import cpu_seconds, folder_bytes, rss_mib  # noqa: E402
from stream.clients import KafkaSettings  # noqa: E402
from stream.clients.progress import end_offsets, records_from, wait_until_consumed  # noqa: E402
from stream.broker.local import LocalBroker, default_home  # noqa: E402
from stream.cli.replay import wait_for_partitions_to_settle  # noqa: E402
from stream.clients.topics import partitions_of  # noqa: E402
from stream.core.timeutil import rfc3339_ms  # noqa: E402
from stream.events import parse_instant  # noqa: E402
from stream.events.internal import TICK_KEY, encode_tick  # noqa: E402
from tests.integration.worker_harness import WorkerNamespace  # noqa: E402

DAY_MS = 86_400_000
START = 1_704_067_200_000  # 2024-01-01T00:00:00Z: with --days up to 1,000, all in the past (the worker dead-letters events from the future)


def one_order_each(customers: int, days: int, seed: int = 7) -> list[dict]:
    """One order per customer at a random instant of ``days`` days, in time order (the
    load of bench_state_scale.py, as input events)."""
    rng = random.Random(seed)
    instants = sorted(START + rng.randrange(days * DAY_MS) for _ in range(customers))
    return [
        {"event_id": f"e{number}", "type": "order", "customer_id": f"c{number:07d}", "occurred_at": rfc3339_ms(instant),
         "order_id": f"o{number}", "status": "placed", "total": float(rng.randrange(5, 300)), "currency": "USD"}
        for number, instant in enumerate(instants)
    ]


def changelog_bytes(bootstrap: str, prefix: str) -> int | None:
    """Bytes of the log segments of the app's changelog partitions on the local broker's
    disk (None: the broker is another one). Index files are left out: the broker
    preallocates an open segment's (10 MiB each by default)."""
    status = LocalBroker(default_home()).status()
    if not (status.running and status.bootstrap == bootstrap and status.data_dir):
        return None
    return sum(file.stat().st_size for file in Path(status.data_dir).glob(f"{prefix}-*-changelog-*/*.log"))


def ready(web_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{web_url}/readyz", timeout=5) as response:
            return response.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


def gauge_sum(web_url: str, name: str) -> float:
    """One family's samples summed over their labels, from the worker's /metrics."""
    with urllib.request.urlopen(f"{web_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and line[len(name)] in "{ ")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=500, help="the orders spread over this many days")
    parser.add_argument("--steps", default="1,1,1,7", help="days each timed rollover moves the clock")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--worker-settings", default="", help='extra [worker] lines, e.g. "rocksdb_memory_mib = 0"')
    parser.add_argument("--no-restore", action="store_true", help="skip the restore from the changelogs")
    parser.add_argument("--settle", type=float, default=0.0, help="seconds to wait before the restore")
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    events = one_order_each(args.customers, args.days)

    with tempfile.TemporaryDirectory(prefix="bench-worker-scale-") as folder:
        ns = WorkerNamespace(bootstrap, f"bench-scale-{os.getpid()}-{int(time.time())}", Path(folder),
                             partitions=args.partitions, worker_settings=args.worker_settings.replace("\\n", "\n"))
        state_folder = ns.tmp_path / "worker-data"
        try:
            ns.start_worker()
            assert ns.worker is not None
            rss_idle = rss_mib(ns.worker.pid)
            cpu_before = cpu_seconds(ns.worker.pid)
            peak = [rss_idle or 0.0]

            def sample(behind: int) -> None:
                assert ns.worker is not None
                peak[0] = max(peak[0], rss_mib(ns.worker.pid) or 0.0)
                now = time.monotonic()
                if now - sample.last >= 30:  # type: ignore[attr-defined]
                    sample.last = now  # type: ignore[attr-defined]
                    print(f"  {now - started:6.0f} s: {behind:>9,} records behind, RSS {rss_mib(ns.worker.pid):6.0f} MiB",
                          flush=True)

            sample.last = 0.0  # type: ignore[attr-defined]
            started = time.monotonic()
            asyncio.run(publish(bootstrap, ns.topics["orders"], events))
            publish_seconds = time.monotonic() - started
            print(f"published {len(events):,} orders in {publish_seconds:.0f} s", flush=True)
            for topics in ([ns.topics["orders"]], [ns.topics["events"]]):
                if not wait_until_consumed(kafka, ns.prefix, end_offsets(kafka, topics), timeout=6 * 3600,
                                           on_progress=sample):
                    raise SystemExit(f"the worker did not catch up:\n{ns.log_tail()}")
            load_seconds = time.monotonic() - started
            load_cpu = cpu_seconds(ns.worker.pid) - cpu_before
            time.sleep(5)  # the census behind /metrics catches up with the last batches
            customers = gauge_sum(ns.web_url, "segments_customers")
            timers = gauge_sum(ns.web_url, "segments_pending_timers")
            rocksdb_bytes = gauge_sum(ns.web_url, "segments_rocksdb_memory_bytes")
            rss_loaded = rss_mib(ns.worker.pid) or 0.0
            state_bytes = folder_bytes(state_folder)

            rollovers = []
            clock_ms = parse_instant(events[-1]["occurred_at"])
            producer = KafkaProducer(acks="all", **kafka.kafka_python_kwargs())
            for days in (int(step) for step in args.steps.split(",")):
                clock_ms = (clock_ms // DAY_MS + days) * DAY_MS  # a later midnight
                changes_from = end_offsets(kafka, [ns.topics["segment_changes"]])
                cpu_at_tick = cpu_seconds(ns.worker.pid)
                ticked_at = time.time()
                for partition in partitions_of(kafka, ns.topics["events"]):
                    producer.send(ns.topics["events"], key=TICK_KEY, value=encode_tick(clock_ms), partition=partition)
                producer.flush()
                if not wait_until_consumed(kafka, ns.prefix, end_offsets(kafka, [ns.topics["events"]]), timeout=3600):
                    raise SystemExit(f"the worker did not take the tick:\n{ns.log_tail()}")
                # The customers due beyond a batch's timers_per_batch, in the next batches.
                wait_for_partitions_to_settle(kafka, ns.prefix, timeout=3600)
                cpu_used = cpu_seconds(ns.worker.pid) - cpu_at_tick
                stamps = [record.timestamp for record in records_from(kafka, changes_from)]
                seconds = max(stamps) / 1000 - ticked_at if stamps else 0.0
                rollovers.append((days, len(stamps), seconds, cpu_used))
                print(f"rollover of {days} day(s) to {rfc3339_ms(clock_ms)}: {len(stamps):,} changes in {seconds:.2f} s",
                      flush=True)
            producer.close()
            rss_rollovers = rss_mib(ns.worker.pid) or 0.0

            restore = None
            if not args.no_restore:
                ns.stop_worker()
                time.sleep(args.settle)
                changelogs = changelog_bytes(bootstrap, ns.prefix)
                shutil.rmtree(state_folder)
                started = time.monotonic()
                ns.start_worker(ready_timeout=3600)
                assert ns.worker is not None
                while not ready(ns.web_url):
                    if ns.worker.poll() is not None:
                        raise SystemExit(f"the worker exited while restoring:\n{ns.log_tail()}")
                    time.sleep(0.5)
                restore_seconds = time.monotonic() - started
                time.sleep(5)
                restore = (restore_seconds, gauge_sum(ns.web_url, "segments_customers"), rss_mib(ns.worker.pid) or 0.0,
                           cpu_seconds(ns.worker.pid), folder_bytes(state_folder), changelogs)
        finally:
            ns.close()

    print()
    print(f"machine: nproc {os.cpu_count()}, {platform.machine()}, CPython {platform.python_version()}")
    print(f"{args.customers:,} customers, one order each over {args.days} days; one worker, --clock event, "
          f"{args.partitions} partitions, at_least_once; settings: {args.worker_settings or 'defaults'}")
    print("| what | measured |")
    print("|---|---|")
    print(f"| load: publish to everything processed | {load_seconds:.0f} s ({len(events) / load_seconds:,.0f} events/s; "
          f"worker CPU {load_cpu:.0f} s, {load_cpu / len(events) * 1e6:,.0f} us per event) |")
    print(f"| customers held (`segments_customers`) / pending timers | {customers:,.0f} / {timers:,.0f} |")
    print(f"| worker RSS idle / peak during the load / loaded / after the rollovers | {rss_idle:.0f} / {peak[0]:.0f} / "
          f"{rss_loaded:.0f} / {rss_rollovers:.0f} MiB |")
    print(f"| RocksDB memory (`segments_rocksdb_memory_bytes`) loaded | {rocksdb_bytes / 2**20:.0f} MiB |")
    print(f"| state folder loaded | {state_bytes / 2**20:.0f} MiB, {state_bytes / len(events):.0f} bytes per customer |")
    for days, changes, seconds, cpu_used in rollovers:
        per_change = f"{seconds / changes * 1e6:,.0f} us per change" if changes else "-"
        print(f"| rollover of {days} day(s) | {changes:,} changes ({changes / len(events):.2%} of the customers), "
              f"{seconds:.2f} s, worker CPU {cpu_used:.2f} s; {per_change} |")
    if restore:
        seconds, restored, rss, cpu, state, changelogs = restore
        on_disk = f"; changelogs on the broker {changelogs / 2**20:,.0f} MiB" if changelogs is not None else ""
        print(f"| restore from the changelogs (state folder deleted{f', after {args.settle:g} s' if args.settle else ''}) "
              f"until ready | {seconds:.0f} s for {restored:,.0f} customers; CPU {cpu:.0f} s; RSS after {rss:.0f} MiB; "
              f"state folder {state / 2**20:.0f} MiB{on_disk} |")


if __name__ == "__main__":
    main()
