"""End-to-end throughput of the stream worker against a raw consumer and the batch
command, in one run.

Starts a real `segments worker --clock event` (fresh app id and topics) on the broker
in KAFKA_BOOTSTRAP_SERVERS (or the local one), replays the first N CDNOW customers with
`--until 1998-07-01 --wait`; then a raw aiokafka consumer reads the same input topics
from the start and only decodes the events (JSON + schema validation, the worker's
intake decoder); then `segments batch` computes the same results from the file. Prints
the three times and their ratios. Worker start-up is excluded (it waits for "Ready").

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

from stream.clients import KafkaSettings  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--guarantee", default="at_least_once", choices=["at_least_once", "exactly_once"])
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        history = tmp / "history.jsonl"
        events = time_ordered(list(cdnow_orders(limit_customers=args.customers)))
        write_jsonl(events, history)
        ns = WorkerNamespace(bootstrap, f"bench-{int(time.time())}", tmp, guarantee=args.guarantee)
        try:
            ns.start_worker()
            started = time.monotonic()
            ns.cli("replay", str(history), "--until", "1998-07-01", "--wait", "--timeout", "3600")
            stream_seconds = time.monotonic() - started
            ns.close()
            inputs = [ns.topics["orders"], ns.topics["carts"], ns.topics["email_opens"]]
            raw_seconds = asyncio.run(raw_consume(bootstrap, inputs, len(events)))
        finally:
            ns.close()
        started = time.monotonic()
        subprocess.run([SEGMENTS, "batch", str(history), "--until", "1998-07-01", "--out", os.devnull], check=True, capture_output=True)
        batch_seconds = time.monotonic() - started
    print(f"machine: nproc {os.cpu_count()}, {platform.machine()}, CPython {platform.python_version()}")
    print(f"history: first {args.customers} CDNOW customers, {len(events)} events; worker {args.guarantee}, 4 partitions")
    print(f"stream (replay --until --wait): {stream_seconds:7.1f} s  {len(events) / stream_seconds:8.0f} events/s")
    print(f"raw consumer (read + decode):   {raw_seconds:7.1f} s  {len(events) / raw_seconds:8.0f} events/s")
    print(f"batch:                          {batch_seconds:7.1f} s  {len(events) / batch_seconds:8.0f} events/s")
    print(f"stream / batch time ratio: {stream_seconds / batch_seconds:.1f}")
    print(f"stream rate / raw consumer rate: {raw_seconds / stream_seconds:.1%}")


if __name__ == "__main__":
    main()
