"""State at scale: RSS and bytes per customer at N customers (default 1,000,000), and
the cost of a day rollover against the share of customers due.

The worker's own storage path without Kafka: the worker's PartitionProcessor over its
TableStore, on RocksDB opened by faust's RocksDBOptions with the options the worker
gives its tables (stream/worker/plumbing.py: ROCKSDB_OPTIONS), 4 partitions, with the
worker's garbage collector settings (stream/cli/collector.py). Each
customer gets one order, spread evenly over the --days before the start; batches of
500 are flushed like the worker's. Then the clock moves forward a day at a time and
each tick's cost is set beside the number of customers it found due, and beside one
full scan of every stored state (what a periodic sweep would cost instead). Last, a
change of rules (other recency thresholds): every partition's sweep moves its customers
to them in batches of --sweep-batch customers, flushed like the worker's.

Changelog records are built (TableStore.flush returns them) but not sent.

    .venv/bin/python bench/bench_state_scale.py --customers 1000000
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import proc_stats  # noqa: E402
from bench.proc_stats import folder_bytes  # noqa: E402
from stream.cli.collector import settle_collector  # noqa: E402
from stream.core.engine import advance  # noqa: E402
from stream.core.events import OrderEvent  # noqa: E402
from stream.core.state import CustomerState  # noqa: E402
from stream.processing import PartitionProcessor  # noqa: E402
from stream.rules import DEFAULT_RULES_PATH, Rules, load_rules  # noqa: E402
from stream.worker.rocksdb_memory import SharedRocksDBMemory  # noqa: E402
from stream.worker.settings import ROCKSDB_MEMORY_MIB  # noqa: E402
from stream.worker.table_keys import partition_of  # noqa: E402
from tests.support.rocksdb_tables import RocksTables  # noqa: E402

DAY_MS = 86_400_000
PARTITIONS = 4
BATCH = 500
START = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def rss_mib() -> float:
    rss = proc_stats.rss_mib()
    return rss if rss is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=500, help="first orders spread over this many days")
    parser.add_argument("--steps", default="1,1,1,3,7", help="days each timed rollover moves the clock")
    parser.add_argument("--sweep-batch", type=int, default=1000, help="customers per batch of the rules change's sweep")
    parser.add_argument("--rocksdb-memory-mib", type=int, default=ROCKSDB_MEMORY_MIB,
                        help="the databases' shared memory budget, as the worker's setting; 0: a cache and write "
                             "buffers per database (ROCKSDB_OPTIONS)")
    args = parser.parse_args()
    settle_collector()  # as the worker runs
    rules = load_rules(DEFAULT_RULES_PATH)
    rng = random.Random(7)
    rss_start = rss_mib()

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        memory = SharedRocksDBMemory(args.rocksdb_memory_mib * 2**20) if args.rocksdb_memory_mib else None
        tables = RocksTables(root, PARTITIONS, memory)

        # Orders in time order, as a replay would bring them; the partition clock follows.
        instants = sorted(START + rng.randrange(args.days * DAY_MS) for _ in range(args.customers))
        pending: dict[int, list[OrderEvent]] = {partition: [] for partition in range(PARTITIONS)}
        started = time.monotonic()

        def flush(partition: int) -> None:
            store = tables.store(partition)
            processor = PartitionProcessor(rules, store)
            for event in pending[partition]:
                processor.on_event(event)
            store.flush()
            pending[partition].clear()

        for number, instant in enumerate(instants):
            customer_id = f"c{number:07d}"
            partition = partition_of(customer_id, PARTITIONS)
            pending[partition].append(OrderEvent(
                event_id=f"e{number}", customer_id=customer_id, occurred_at=instant, order_id=f"o{number}",
                status="placed", total_micros=rng.randrange(5, 300) * 1_000_000, discounted=False, refund_micros=None,
            ))
            if len(pending[partition]) >= BATCH:
                flush(partition)
        for partition in range(PARTITIONS):
            flush(partition)
        load_seconds = time.monotonic() - started
        gc.collect()
        rss_loaded = rss_mib()

        # What a periodic sweep would cost instead: every state read and brought to the
        # clock (not written back).
        customers = timers = value_bytes = key_bytes = 0
        sweep_clock = (instants[-1] // DAY_MS + 1) * DAY_MS
        started = time.monotonic()
        for partition in range(PARTITIONS):
            db = tables.db("customers", partition)
            iterator = db.iter()
            iterator.seek_to_first()
            while iterator.valid():
                if not iterator.key().startswith(b"__faust"):
                    advance(CustomerState.from_bytes(iterator.value()), sweep_clock, rules)
                    customers += 1
                    value_bytes += len(iterator.value())
                    key_bytes += len(iterator.key())
                iterator.next()
        scan_seconds = time.monotonic() - started
        for partition in range(PARTITIONS):
            iterator = tables.db("timers", partition).iter()
            iterator.seek_to_first()
            while iterator.valid():
                timers += 1
                key_bytes += len(iterator.key())
                iterator.next()

        ticks = []
        clock = instants[-1]
        for days in (int(step) for step in args.steps.split(",")):
            clock = (clock // DAY_MS + days) * DAY_MS  # a later midnight
            started = time.monotonic()
            due = changes = 0
            for partition in range(PARTITIONS):
                store = tables.store(partition)
                result = PartitionProcessor(rules, store).on_tick(clock)
                due += len(result.touched)
                changes += len(result.changes)
                store.flush()
            ticks.append((time.monotonic() - started, due, changes))
        rss_rollovers = rss_mib()

        # A change of rules: the worker's sweep, batch after batch, each flushed.
        new_rules = Rules.model_validate({
            **rules.model_dump(mode="json"), "scores": {**rules.model_dump(mode="json")["scores"],
                                                       "recency": {"thresholds": [14, 45, 120, 300]}},
        })
        started = time.monotonic()
        swept = sweep_changes = sweep_batches = 0
        for partition in range(PARTITIONS):
            while True:
                store = tables.store(partition)
                processor = PartitionProcessor(new_rules, store)
                result = processor.sweep_rules(args.sweep_batch)
                store.flush()
                swept += len(result.touched)
                sweep_changes += len(result.changes)
                sweep_batches += 1
                if processor.rules_record().swept:
                    break
        sweep_seconds = time.monotonic() - started
        for db_table in tables.tables.values():
            db_table.data.db.flush()
        disk = folder_bytes(root)
        rss_end = rss_mib()

    print(f"machine: nproc {os.cpu_count()}, {platform.machine()}, CPython {platform.python_version()}")
    print(f"customers: {customers:,} over {PARTITIONS} partitions, one order each over {args.days} days; timers: {timers:,}")
    print("RocksDB memory: " + (f"one shared budget of {args.rocksdb_memory_mib} MiB" if args.rocksdb_memory_mib else "a cache and write buffers per database (ROCKSDB_OPTIONS)"))
    print(f"load through PartitionProcessor + TableStore + RocksDB: {load_seconds:.1f} s ({customers / load_seconds:,.0f} events/s)")
    print(f"state: {value_bytes / customers:.0f} bytes/customer of state values, {key_bytes / customers:.0f} of keys "
          f"(customer + timer); RocksDB on disk after flush {disk / customers:.0f} bytes/customer ({disk / 2**20:.0f} MiB)")
    print(f"RSS: {rss_start:.0f} MiB at start, {rss_loaded:.0f} MiB loaded, {rss_rollovers:.0f} MiB after the rollovers, "
          f"{rss_end:.0f} MiB at the end")
    print(f"full sweep (read and advance every state): {scan_seconds:.2f} s, {scan_seconds / customers * 1e6:.1f} us/customer")
    for days, (seconds, due, changes) in zip(args.steps.split(","), ticks):
        per_due = f"{seconds / due * 1e6:.0f} us/due customer" if due else "-"
        print(f"rollover of {days} day(s): {due:,} due ({due / customers:.2%}), {changes:,} changes, {seconds:.3f} s, "
              f"{per_due}; {seconds / scan_seconds:.3f} of a full sweep")
    print(f"change of rules: {swept:,} customers moved in {sweep_batches:,} batches of up to {args.sweep_batch:,}, "
          f"{sweep_changes:,} changes, {sweep_seconds:.1f} s ({swept / sweep_seconds:,.0f} customers/s, "
          f"{sweep_seconds / swept * 1e6:.0f} us/customer); {sweep_seconds / scan_seconds:.1f} full scans")


if __name__ == "__main__":
    main()
