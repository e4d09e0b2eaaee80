"""A long run at a steady rate: does the worker's memory level off?

Starts real `segments worker --clock wall` processes (fresh app id and topics each) on
the broker in KAFKA_BOOTSTRAP_SERVERS (or the local one), one per --settings given
(`[worker]` lines, side by side in one run; none: one worker as configured by default),
and publishes to each the same live shop's traffic (orders, cart activity, email opens:
`workloads.live_burst`) of a fixed pool of customers at a steady rate, each event
stamped with the moment it is published. Every --sample seconds it records each
worker's resident memory (`VmRSS`), its CPU time, the size of its state folder, and
from its `/metrics` the events it accepted and the customers it holds. Customers are
drawn at random from the pool, so by the end of the warm-up nearly all of them have
been seen (90-99 % at 150-300 events/s and 20,000 customers): memory that keeps rising
after it is hardly the customers' data. The report gives the slope of RSS over the
samples after --warmup minutes (least squares, MiB per hour) next to the RSS range.

    .venv/bin/python bench/bench_soak.py --minutes 20 --rate 300 --customers 20000
    .venv/bin/python bench/bench_soak.py --settings "" --settings "rocksdb_memory_mib = 0"
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import orjson
from kafka import KafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.worker_harness import WorkerNamespace  # noqa: E402
from bench.proc_stats import cpu_seconds, folder_bytes, rss_mib  # noqa: E402
from bench.workloads import live_burst  # noqa: E402

TOPIC_OF_TYPE = {"order": "orders", "cart": "carts", "email_open": "email_opens"}
SAMPLE_LINE = re.compile(r"^(segments_events_total|segments_customers)\{[^}]*\} (\S+)$", re.MULTILINE)


def metric_sums(web_url: str) -> dict[str, float]:
    """Accepted events and stored customers, summed over their labels."""
    with urllib.request.urlopen(f"{web_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    sums = {"segments_events_total": 0.0, "segments_customers": 0.0}
    for name, value in SAMPLE_LINE.findall(text):
        sums[name] += float(value)
    return sums


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) points, in MiB per hour."""
    count = len(points)
    mean_x = sum(x for x, _ in points) / count
    mean_y = sum(y for _, y in points) / count
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return 3600 * sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0


def publish_steadily(namespaces: list[WorkerNamespace], events: list[dict], rate: float, stop: threading.Event,
                     published: list[int]) -> None:
    """Each event at its turn (start + n / rate), stamped with the moment it goes out, to
    every namespace's input topic."""
    producer = KafkaProducer(bootstrap_servers=namespaces[0].bootstrap, linger_ms=5, acks="all")
    started = time.monotonic()
    try:
        for number, event in enumerate(events):
            if stop.is_set():
                break
            delay = started + number / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now_ms = time.time_ns() // 1_000_000
            event["occurred_at"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_ms / 1000)) + f".{now_ms % 1000:03d}Z"
            value = orjson.dumps(event)
            for ns in namespaces:
                producer.send(ns.topics[TOPIC_OF_TYPE[event["type"]]], key=event["customer_id"].encode(), value=value)
            published[0] = number + 1
    finally:
        producer.flush()
        producer.close()


def report(label: str, samples: list[dict[str, float]], log_text: str, warmup_minutes: float) -> None:
    after_warmup = [(sample["seconds"], sample["rss"]) for sample in samples if sample["seconds"] >= warmup_minutes * 60]
    last = samples[-1]
    errors = [line for line in log_text.splitlines() if "[ERROR]" in line or "[CRITICAL]" in line]
    print()
    print(f"worker {label}")
    print("| what | measured |")
    print("|---|---|")
    print(f"| events published / accepted by the worker | {last['published']:,} / {last['accepted']:,.0f} |")
    print(f"| customers held at the end | {last['customers']:,.0f} |")
    if after_warmup:
        print(f"| RSS after {warmup_minutes:g} min / at the end | {after_warmup[0][1]:.1f} / {last['rss']:.1f} MiB |")
    if len(after_warmup) >= 2:
        low, high = min(rss for _, rss in after_warmup), max(rss for _, rss in after_warmup)
        print(f"| RSS range after the warm-up | {low:.1f}-{high:.1f} MiB |")
        print(f"| RSS slope after the warm-up (least squares) | {slope_per_hour(after_warmup):+.1f} MiB/hour |")
    print(f"| state folder at the end | {last['state']:.1f} MiB |")
    print(f"| worker CPU during the traffic | {last['cpu']:.0f} s in {last['seconds']:.0f} s "
          f"({last['cpu'] / last['published'] * 1e6:,.0f} us per event) |")
    print(f"| ERROR/CRITICAL lines in the worker's log | {len(errors)} |")
    for line in errors[:10]:
        print("   ", line[:200])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=300.0, help="events per second (to each worker)")
    parser.add_argument("--customers", type=int, default=20_000, help="the pool the events are drawn from")
    parser.add_argument("--warmup", type=float, default=5.0, help="minutes left out of the slope")
    parser.add_argument("--sample", type=float, default=15.0, help="seconds between samples")
    parser.add_argument("--guarantee", default="at_least_once", choices=["at_least_once", "exactly_once"])
    parser.add_argument("--settings", action="append", help="[worker] lines of one worker (repeat: one worker each)")
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    variants = args.settings or [""]

    seconds = args.minutes * 60
    count = int(args.rate * seconds)
    customer_ids = [f"soak-{number:06d}" for number in range(args.customers)]
    events = live_burst(customer_ids, count, 0, seconds=int(seconds))
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as folder:
        namespaces = []
        for number, settings in enumerate(variants):
            tmp_path = Path(folder) / f"worker-{number}"
            tmp_path.mkdir()
            namespaces.append(WorkerNamespace(
                bootstrap, f"bench-soak-{os.getpid()}-{int(time.time())}-{number}", tmp_path,
                clock="wall", guarantee=args.guarantee, worker_settings=settings,
            ))
        samples: list[list[dict[str, float]]] = [[] for _ in namespaces]
        logs: list[str] = []
        stop = threading.Event()
        published = [0]
        try:
            for ns in namespaces:
                ns.start_worker()
            publisher = threading.Thread(target=publish_steadily, args=(namespaces, events, args.rate, stop, published),
                                         daemon=True)
            # CPU from here on: the traffic's, not the start-up's.
            cpu_at_start = [cpu_seconds(ns.worker.pid) for ns in namespaces if ns.worker is not None]
            started = time.monotonic()
            publisher.start()
            while publisher.is_alive():
                publisher.join(timeout=args.sample)
                line = f"{(time.monotonic() - started) / 60:5.1f} min  published {published[0]:>8,}"
                for ns, worker_samples, cpu_before in zip(namespaces, samples, cpu_at_start):
                    assert ns.worker is not None
                    try:
                        sums = metric_sums(ns.web_url)
                    except OSError as error:  # one missed sample, not the whole run
                        print(f"  (no /metrics from {ns.prefix}: {error})", flush=True)
                        sums = {"segments_events_total": float("nan"), "segments_customers": float("nan")}
                    worker_samples.append({
                        "seconds": time.monotonic() - started, "rss": rss_mib(ns.worker.pid),
                        "cpu": cpu_seconds(ns.worker.pid) - cpu_before, "state": folder_bytes(ns.tmp_path / "worker-data") / 2**20,
                        "published": published[0], "accepted": sums["segments_events_total"],
                        "customers": sums["segments_customers"],
                    })
                    last = worker_samples[-1]
                    line += (f" | RSS {last['rss']:6.1f} MiB  state {last['state']:6.1f} MiB  "
                             f"accepted {last['accepted']:>9,.0f}  customers {last['customers']:>7,.0f}")
                print(line, flush=True)
        finally:
            stop.set()
            for ns in namespaces:
                logs.append(ns.worker_log.read_text() if ns.worker_log.exists() else "")
                ns.close()

    print()
    print(f"machine: nproc {os.cpu_count()}, {platform.machine()}, CPython {platform.python_version()}")
    print(f"{args.minutes:g} min at {args.rate:g} events/s over {args.customers:,} customers, {args.guarantee}, "
          f"{len(namespaces)} worker(s) side by side, --clock wall")
    for settings, worker_samples, log_text in zip(variants, samples, logs):
        report(repr(settings or "as configured by default"), worker_samples, log_text, args.warmup)


if __name__ == "__main__":
    main()
