"""End-to-end throughput of the stream worker against a raw consumer and the batch
command, in one run.

Starts real `segments worker --clock event` processes (fresh app id and topics; one by
default, ``--workers N`` for more, sharing the partitions) on the broker in
KAFKA_BOOTSTRAP_SERVERS (or the local one). Once they are ready, publishes the first N
CDNOW customers' orders, time-ordered, keyed by customer, with strictly increasing
record timestamps like `segments replay` (through aiokafka, so the publisher keeps well
ahead of the worker). The stream time runs from the first publish to the broker
timestamp of the last segment change, which the worker's producer sets: the worker's
processing, without the polling of committed offsets that `replay --wait` adds.

Then a raw aiokafka consumer reads the same input topic from the start and only decodes
the events (JSON + schema validation, the worker's intake decoder), a faust agent that
does nothing takes them in batches (faust's own floor, bench/faust_floor_app.py), and
`segments batch`
computes the same results from the file, until the last event's instant. Prints the
times and their ratios.

    .venv/bin/python bench/bench_stream_vs_batch.py --customers 2000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from stream.clients import KafkaSettings  # noqa: E402
from stream.clients.progress import end_offsets, wait_until_consumed  # noqa: E402
from stream.clients.topics import partitions_of  # noqa: E402
from stream.demo.cdnow import cdnow_orders, time_ordered, write_jsonl  # noqa: E402
from stream.processing.intake import decode_input  # noqa: E402
from stream.rules import DEFAULT_RULES_PATH, load_rules  # noqa: E402
from tests.integration.worker_harness import SEGMENTS, WorkerNamespace  # noqa: E402


async def raw_consume(bootstrap: str, topics: list[str], expected: int) -> float:
    """Seconds a bare aiokafka consumer takes to read and decode ``expected`` events."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    rules = load_rules(DEFAULT_RULES_PATH)
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    partitions = [TopicPartition(topic, p) for topic in topics for p in partitions_of(kafka, topic)]
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **kafka.aiokafka_kwargs())
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        started = time.monotonic()
        seen = 0
        while seen < expected:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                for record in records:
                    decode_input(record.value, rules)
                seen += len(records)
        return time.monotonic() - started
    finally:
        await consumer.stop()


async def publish(bootstrap: str, topic: str, events: list[dict]) -> None:
    """The history on ``topic`` as `segments replay` sends it: keyed by customer, record
    timestamps strictly increasing (the worker breaks ties between equal instants by them)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(acks="all", linger_ms=5, **KafkaSettings(bootstrap_servers=bootstrap).aiokafka_kwargs())
    await producer.start()
    try:
        stamped = 0
        deliveries = []
        for event in events:
            stamped = max(time.time_ns() // 1_000_000, stamped + 1)
            deliveries.append(await producer.send(
                topic, orjson.dumps(event), key=event["customer_id"].encode(), timestamp_ms=stamped,
            ))
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()


def faust_floor(bootstrap: str, topic: str, expected: int, *, patched: bool) -> float:
    """Seconds a faust agent that only takes the events in batches needs for them;
    ``patched``: with every change in stream/worker/faust_patches.py, direct delivery
    included (the worker leaves that one off for now)."""
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "faust_floor_app.py"), topic, str(expected), bootstrap,
         "patched" if patched else "as-shipped"],
        capture_output=True, text=True, timeout=600, check=True,
    )
    return float(completed.stdout.split("floor ")[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--guarantee", default="at_least_once", choices=["at_least_once", "exactly_once"])
    parser.add_argument("--workers", type=int, default=1, help="worker processes sharing the partitions")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--worker-settings", default="", help='extra [worker] lines of the config, e.g. "batch_seconds = 0.05"')
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        history = tmp / "history.jsonl"
        events = time_ordered(list(cdnow_orders(limit_customers=args.customers)))
        write_jsonl(events, history)
        ns = WorkerNamespace(bootstrap, f"bench-{int(time.time())}", tmp, guarantee=args.guarantee, partitions=args.partitions,
                             worker_settings=args.worker_settings.replace("\\n", "\n"))
        try:
            ns.start_worker()
            for number in range(1, args.workers):
                ns.start_extra_worker(f"worker{number}")
            if args.workers > 1:
                time.sleep(8)  # the group settles on its final assignment
            published_at = time.time()
            asyncio.run(publish(bootstrap, ns.topics["orders"], events))
            publish_seconds = time.time() - published_at
            inputs = [ns.topics["orders"], ns.topics["carts"], ns.topics["email_opens"]]
            for topics in (inputs, [ns.topics["events"]]):
                if not wait_until_consumed(kafka, ns.prefix, end_offsets(kafka, topics), timeout=3600):
                    raise SystemExit(f"the worker did not catch up:\n{ns.log_tail()}")
            change_records = ns.read_topic("segment_changes")
            if not change_records:
                raise SystemExit("no segment changes on the topic")
            changes, last_change_ms = len(change_records), max(record.timestamp for record in change_records)
            stream_seconds = last_change_ms / 1000 - published_at
            ns.close()
            raw_seconds = asyncio.run(raw_consume(bootstrap, inputs, len(events)))
            floor_seconds = faust_floor(bootstrap, ns.topics["orders"], len(events), patched=True)
            shipped_floor_seconds = faust_floor(bootstrap, ns.topics["orders"], len(events), patched=False)
        finally:
            ns.close()
        started = time.monotonic()
        until = events[-1]["occurred_at"]
        subprocess.run([SEGMENTS, "batch", str(history), "--until", until, "--out", os.devnull], check=True, capture_output=True)
        batch_seconds = time.monotonic() - started
    print(f"machine: nproc {os.cpu_count()}, {platform.machine()}, CPython {platform.python_version()}")
    print(f"history: first {args.customers} CDNOW customers, {len(events)} events; "
          f"{args.workers} worker process(es), {args.guarantee}, {args.partitions} partitions; {changes} segment changes")
    print(f"publish (aiokafka):             {publish_seconds:7.1f} s  {len(events) / publish_seconds:8.0f} events/s")
    print(f"stream (publish to last change): {stream_seconds:6.1f} s  {len(events) / stream_seconds:8.0f} events/s")
    print(f"raw consumer (read + decode):   {raw_seconds:7.1f} s  {len(events) / raw_seconds:8.0f} events/s")
    print(f"faust agent doing nothing, faust as shipped: {shipped_floor_seconds:7.1f} s  {len(events) / shipped_floor_seconds:8.0f} events/s")
    print(f"  the same, with direct delivery: {floor_seconds:7.1f} s  {len(events) / floor_seconds:8.0f} events/s")
    print(f"batch (--until the last event): {batch_seconds:7.1f} s  {len(events) / batch_seconds:8.0f} events/s")
    print(f"stream / batch time ratio: {stream_seconds / batch_seconds:.1f}")
    print(f"stream rate / raw consumer rate: {raw_seconds / stream_seconds:.1%}")
    print(f"faust floor rate / raw consumer rate: {raw_seconds / shipped_floor_seconds:.1%} as shipped, "
          f"{raw_seconds / floor_seconds:.1%} with direct delivery")


if __name__ == "__main__":
    main()
