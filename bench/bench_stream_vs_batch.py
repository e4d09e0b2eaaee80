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

Then the same events go to a topic of their own, where a raw aiokafka consumer reads
them and only decodes them (JSON + schema validation, the worker's intake decoder) and a
faust agent that does nothing takes them in batches (faust's own floor,
bench/faust_floor_app.py); `segments batch` computes the same results from the file,
until the last event's instant. Prints the
times and their ratios, and the CPU seconds the worker process(es) and the local broker
(`segments kafka start`'s, when it is the one benchmarked) used while the measured
events were published and taken.

``--workload live`` measures a busy hour instead (bench/workloads.py): the customers'
history is replayed and the clock moved to 1998-07-01 first, untimed; then the hour's
orders, carts and opens are published to their topics and timed, and the batch time is
that of history plus hour less the history alone. ``--profile FILE`` records the worker
with py-spy while it takes the measured events (collapsed stacks).

    .venv/bin/python bench/bench_stream_vs_batch.py --customers 2000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
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
from stream.clients.topics import TopicSpec, ensure_topics, partitions_of  # noqa: E402
from stream.broker.local import LocalBroker, default_home  # noqa: E402
from stream.demo.cdnow import cdnow_orders, time_ordered, write_jsonl  # noqa: E402
from stream.events import parse_instant  # noqa: E402
from stream.processing.intake import decode_input  # noqa: E402
from stream.rules import DEFAULT_RULES_PATH, load_rules  # noqa: E402
from tests.integration.worker_harness import SEGMENTS, WorkerNamespace  # noqa: E402

from bench.proc_stats import cpu_seconds  # noqa: E402
from bench.workloads import LIVE_START, live_burst  # noqa: E402


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


async def publish(bootstrap: str, topic: str | dict[str, str], events: list[dict]) -> None:
    """The history on ``topic`` (or on the topic of each event's type) as `segments replay`
    sends it: keyed by customer, record timestamps strictly increasing (the worker breaks
    ties between equal instants by them)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(acks="all", linger_ms=5, **KafkaSettings(bootstrap_servers=bootstrap).aiokafka_kwargs())
    await producer.start()
    try:
        stamped = 0
        deliveries = []
        for event in events:
            stamped = max(time.time_ns() // 1_000_000, stamped + 1)
            deliveries.append(await producer.send(
                topic if isinstance(topic, str) else topic[event["type"]], orjson.dumps(event), key=event["customer_id"].encode(), timestamp_ms=stamped,
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


def cpu_by_name(pids_by_name: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(map(cpu_seconds, pids)) for name, pids in pids_by_name.items()}


def local_broker_pid(bootstrap: str) -> int | None:
    """The pid of `segments kafka start`'s broker when it is the one benchmarked (its CPU
    shares the machine with the worker); None for any other broker."""
    status = LocalBroker(default_home()).status()
    return status.pid if status.running and status.bootstrap == bootstrap else None


def batch_seconds(files: list[Path], until: str) -> float:
    started = time.monotonic()
    subprocess.run([SEGMENTS, "batch", *map(str, files), "--until", until, "--out", os.devnull], check=True, capture_output=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--workload", default="history", choices=["history", "live"],
                        help="history: the customers' CDNOW orders, 18 months in one replay; live: a busy hour "
                             "of orders, carts and opens of those customers after their history (bench/workloads.py)")
    parser.add_argument("--live-events", type=int, default=0, help="events in the live hour (default: 3 per customer)")
    parser.add_argument("--guarantee", default="at_least_once", choices=["at_least_once", "exactly_once"])
    parser.add_argument("--workers", type=int, default=1, help="worker processes sharing the partitions")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--profile", metavar="FILE", help="record the (first) worker with py-spy while it takes the "
                        "measured events: FILE gets the collapsed stacks (flamegraph.pl or speedscope read them)")
    parser.add_argument("--worker-settings", default="", help='extra [worker] lines of the config, e.g. "batch_seconds = 0.05"')
    args = parser.parse_args()
    py_spy = Path(sys.executable).with_name("py-spy")
    if args.profile and not py_spy.exists():
        # Not a dependency of the project: only this option needs it.
        parser.error(f"--profile records with py-spy, which is not installed: {sys.executable} -m pip install py-spy")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    live = args.workload == "live"
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        history = tmp / "history.jsonl"
        history_events = time_ordered(list(cdnow_orders(limit_customers=args.customers)))
        write_jsonl(history_events, history)
        if live:
            customer_ids = sorted({event["customer_id"] for event in history_events})
            events = live_burst(customer_ids, args.live_events or 3 * args.customers, parse_instant(LIVE_START))
            burst = tmp / "burst.jsonl"
            write_jsonl(events, burst)
        else:
            events = history_events
        ns = WorkerNamespace(bootstrap, f"bench-{int(time.time())}", tmp, guarantee=args.guarantee, partitions=args.partitions,
                             worker_settings=args.worker_settings.replace("\\n", "\n"))
        inputs = [ns.topics["orders"], ns.topics["carts"], ns.topics["email_opens"]]
        by_type = {"order": inputs[0], "cart": inputs[1], "email_open": inputs[2]}
        try:
            ns.start_worker()
            for number in range(1, args.workers):
                ns.start_extra_worker(f"worker{number}")
            if args.workers > 1:
                time.sleep(8)  # the group settles on its final assignment
            if live:  # the customers' history first, then the clock to the hour's start; not timed
                ns.cli("replay", str(history), "--until", LIVE_START, "--wait", timeout=3600)
            profiler = None
            if args.profile:
                profiler = subprocess.Popen([str(py_spy), "record", "--format", "raw",
                                             "--rate", "200", "--output", args.profile, "--pid", str(ns.worker.pid)])
                time.sleep(1)
            # Where the machine's CPU went while the measured events were taken.
            measured_pids = {"worker(s)": [ns.worker.pid, *(extra.pid for extra in ns.extra_workers)]}
            broker_pid = local_broker_pid(bootstrap)
            if broker_pid is not None:
                measured_pids["broker"] = [broker_pid]
            cpu_before = cpu_by_name(measured_pids)
            published_at = time.time()
            asyncio.run(publish(bootstrap, by_type, events))
            publish_seconds = time.time() - published_at
            for topics in (inputs, [ns.topics["events"]]):
                if not wait_until_consumed(kafka, ns.prefix, end_offsets(kafka, topics), timeout=3600):
                    raise SystemExit(f"the worker did not catch up:\n{ns.log_tail()}")
            cpu_used = {name: seconds - cpu_before[name] for name, seconds in cpu_by_name(measured_pids).items()}
            if profiler:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(60)
            change_records = [record for record in ns.read_topic("segment_changes") if record.timestamp >= published_at * 1000]
            if not change_records:
                raise SystemExit("no segment changes on the topic")
            changes, last_change_ms = len(change_records), max(record.timestamp for record in change_records)
            stream_seconds = last_change_ms / 1000 - published_at
            ns.close()
            # The raw consumer and faust's floor read the measured events alone, from one topic.
            measured_topic = f"{ns.prefix}-measured"
            ensure_topics(kafka, [TopicSpec(measured_topic, args.partitions)])
            asyncio.run(publish(bootstrap, measured_topic, events))
            raw_seconds = asyncio.run(raw_consume(bootstrap, [measured_topic], len(events)))
            floor_seconds = faust_floor(bootstrap, measured_topic, len(events), patched=True)
            shipped_floor_seconds = faust_floor(bootstrap, measured_topic, len(events), patched=False)
        finally:
            ns.close()
        if live:  # the hour's share of the batch: the whole run less the history alone
            history_seconds = batch_seconds([history], LIVE_START)
            batch_time = batch_seconds([history, burst], events[-1]["occurred_at"]) - history_seconds
        else:
            batch_time = batch_seconds([history], events[-1]["occurred_at"])
    print(f"machine: nproc {os.cpu_count()}, {platform.machine()}, CPython {platform.python_version()}")
    workload = (f"a live hour after the history of the first {args.customers} CDNOW customers: {len(events)} events"
                if live else f"history: first {args.customers} CDNOW customers, {len(events)} events")
    print(f"{workload}; {args.workers} worker process(es), {args.guarantee}, {args.partitions} partitions; "
          f"{changes} segment changes")
    print(f"publish (aiokafka):             {publish_seconds:7.1f} s  {len(events) / publish_seconds:8.0f} events/s")
    print(f"stream (publish to last change): {stream_seconds:6.1f} s  {len(events) / stream_seconds:8.0f} events/s")
    for name, seconds in cpu_used.items():
        print(f"  CPU of the {name} meanwhile: {seconds:6.1f} s  {seconds / len(events) * 1e6:6.0f} us per event "
              "(publishing included)")
    print(f"raw consumer (read + decode):   {raw_seconds:7.1f} s  {len(events) / raw_seconds:8.0f} events/s")
    print(f"faust agent doing nothing, faust as shipped: {shipped_floor_seconds:7.1f} s  {len(events) / shipped_floor_seconds:8.0f} events/s")
    print(f"  the same, with direct delivery: {floor_seconds:7.1f} s  {len(events) / floor_seconds:8.0f} events/s")
    print(f"batch (--until the last event): {batch_time:7.1f} s  {len(events) / batch_time:8.0f} events/s")
    print(f"stream / batch time ratio: {stream_seconds / batch_time:.1f}")
    print(f"stream rate / raw consumer rate: {raw_seconds / stream_seconds:.1%}")
    print(f"faust floor rate / raw consumer rate: {raw_seconds / shipped_floor_seconds:.1%} as shipped, "
          f"{raw_seconds / floor_seconds:.1%} with direct delivery")


if __name__ == "__main__":
    main()
