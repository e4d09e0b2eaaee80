"""Latency from an event's arrival in Kafka to its segment change, at a steady rate.

Starts a real `segments worker` (fresh app id and topics) on the broker in
KAFKA_BOOTSTRAP_SERVERS (or the local one), then publishes first orders of new customers
at a steady rate (default 1,000 events/s for 40 s); each one moves its customer into a
segment, so each has exactly one segment change. Latency of an event = the Kafka
timestamp of its segment change (set by the worker's producer) minus the Kafka
timestamp of the order (set by this script's producer), both on this machine's clock.
Also reported: the latency as this script's consumer saw it (receipt time - order
timestamp). The first --warmup and the last --cooldown seconds are left out.

    .venv/bin/python bench/bench_latency.py --rate 1000 --seconds 40
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import orjson
from kafka import KafkaConsumer, KafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stream.events.internal import decode_record  # noqa: E402
from tests.integration.worker_harness import WorkerNamespace  # noqa: E402


def order(customer_id: str, event_id: str, now_ms: int) -> bytes:
    occurred = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_ms / 1000)) + f".{now_ms % 1000:03d}Z"
    return orjson.dumps({
        "event_id": event_id, "type": "order", "customer_id": customer_id, "occurred_at": occurred,
        "order_id": f"o-{event_id}", "status": "placed", "total": 42.5, "currency": "USD",
    })


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--cooldown", type=float, default=3.0,
                        help="seconds at the end left out: once traffic stops, the intake's event-time merge holds "
                             "the last events until the quiet partitions are confirmed read to their end")
    parser.add_argument("--guarantee", default="at_least_once", choices=["at_least_once", "exactly_once"])
    parser.add_argument("--stages", action="store_true",
                        help="also read the events topic to split the time between the intake and the customer agent "
                             "(one more consumer on the same 2 cores: it slows the worker down)")
    parser.add_argument("--per-second", action="store_true", help="print the median latency of each second")
    parser.add_argument("--batch-seconds", type=float, default=None, help="the worker's batch_seconds (default: its own)")
    parser.add_argument("--worker-settings", default="",
                        help='extra [worker] lines of the config, e.g. "commit_interval_seconds = 0.1"')
    args = parser.parse_args()
    extra = f"batch_seconds = {args.batch_seconds}\n" if args.batch_seconds is not None else ""
    extra += args.worker_settings.replace("\\n", "\n")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    with tempfile.TemporaryDirectory() as folder:
        ns = WorkerNamespace(bootstrap, f"latency-{int(time.time())}", Path(folder), guarantee=args.guarantee, worker_settings=extra)
        try:
            ns.start_worker()
            sent: dict[str, int] = {}  # event id -> order's Kafka timestamp (ms)
            produced: dict[str, int] = {}  # event id -> change's Kafka timestamp
            observed: dict[str, int] = {}  # event id -> receipt time here (ms)
            total = int(args.rate * args.seconds)
            stop = threading.Event()

            isolation = "read_committed" if args.guarantee == "exactly_once" else "read_uncommitted"

            def follow(topic: str, on_record: Callable[[Any, int], None]) -> threading.Thread:
                """Read ``topic`` from its start until the run stops, in a thread of its own;
                ``on_record(record, receipt time in ms)``."""
                consumer = KafkaConsumer(
                    topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                    enable_auto_commit=False, isolation_level=isolation, fetch_max_wait_ms=5,
                )

                def run() -> None:
                    try:
                        while not stop.is_set():
                            for records in consumer.poll(timeout_ms=50).values():
                                received = time.time_ns() // 1_000_000
                                for record in records:
                                    on_record(record, received)
                    finally:
                        consumer.close()

                thread = threading.Thread(target=run, daemon=True)
                thread.start()
                return thread

            def on_change(record: Any, received: int) -> None:
                change = orjson.loads(record.value)
                if change.get("kind") == "segment" and change["cause"].get("kind") == "event":
                    event_id = change["cause"]["event_id"]
                    produced.setdefault(event_id, record.timestamp)
                    observed.setdefault(event_id, received)

            readers = [follow(ns.topics["segment_changes"], on_change)]
            # Where the time goes: the intake forwards each event to the events topic
            # (its record's timestamp is when the worker produced it).
            forwarded: dict[str, int] = {}

            def on_forwarded(record: Any, received: int) -> None:
                decoded = decode_record(record.value)
                if decoded is not None and not isinstance(decoded, int):  # not a tick or a nudge
                    forwarded.setdefault(decoded.event_id, record.timestamp)

            if args.stages:
                readers.append(follow(ns.topics["events"], on_forwarded))
            producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=1)
            run = f"{int(time.time())}"
            started = time.monotonic()
            for n in range(total):
                ahead = n / args.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
                now = time.time_ns() // 1_000_000
                event_id = f"lat-{run}-{n}"
                sent[event_id] = now
                customer = f"lat-{run}-c{n}"
                producer.send(ns.topics["orders"], key=customer.encode(), value=order(customer, event_id, now), timestamp_ms=now)
            producer.flush()
            publish_seconds = time.monotonic() - started
            deadline = time.monotonic() + 120
            while len(produced) < total and time.monotonic() < deadline:
                time.sleep(0.2)
            stop.set()
            for reader in readers:
                reader.join()
            producer.close()
        finally:
            ns.close()

    warm_from = int(args.warmup * args.rate)
    cool_from = total - int(args.cooldown * args.rate)
    measured = [f"lat-{run}-{n}" for n in range(warm_from, cool_from)]
    missing = [event_id for event_id in measured if event_id not in produced]
    by_worker = [produced[e] - sent[e] for e in measured if e in produced]
    by_reader = [observed[e] - sent[e] for e in measured if e in observed]
    in_intake = [forwarded[e] - sent[e] for e in measured if e in forwarded]
    in_agent = [produced[e] - forwarded[e] for e in measured if e in forwarded and e in produced]
    print(f"machine: nproc {os.cpu_count()}, {platform.machine()}, CPython {platform.python_version()}")
    batching = f"batch_seconds {args.batch_seconds}" if args.batch_seconds is not None else "default batch_seconds"
    if args.worker_settings:
        batching += f", {args.worker_settings}"
    print(f"worker {args.guarantee}, 4 partitions, {batching}; {total} orders of new customers at {args.rate:.0f}/s "
          f"(published in {publish_seconds:.1f} s, {total / publish_seconds:.0f}/s); first {warm_from} and last {total - cool_from} left out")
    print(f"changes seen for {len(by_worker)} of {len(measured)} measured events ({len(missing)} missing)")
    if args.per_second:
        per_second: dict[int, list[int]] = {}
        for e in measured:
            if e in produced:
                per_second.setdefault((sent[e] - sent[measured[0]]) // 1000, []).append(produced[e] - sent[e])
        for second, values in sorted(per_second.items()):
            print(f"  second {second}: p50 {percentile(values, 0.5):.0f} ms, max {max(values)} ms")
    stages = (
        ("event -> change produced", by_worker), ("event -> change consumed", by_reader),
        ("  of which: event -> forwarded by the intake", in_intake), ("  of which: forwarded -> change produced", in_agent),
    )
    for label, values in stages if args.stages else stages[:2]:
        if values:
            print(f"{label}: p50 {percentile(values, 0.50):.0f} ms  p99 {percentile(values, 0.99):.0f} ms  "
                  f"max {max(values):.0f} ms")


if __name__ == "__main__":
    main()
