"""The customer agent's batch work without Kafka, side by side in several configurations.

The worker's own code for a batch (``stream.worker.batch_work.process_records``, then
``TableStore.flush``: RocksDB writes and the changelog records, built but not sent) over
real RocksDB (faust's RocksDBOptions with the worker's ``ROCKSDB_OPTIONS``, 4
partitions, ``tests/support/rocksdb_tables.py``), fed the first N CDNOW customers'
orders in time order as ``segments-events`` records, in batches of --batch records per
partition. What it leaves out: faust, the intake agent, the sends.

``--workload live``: those customers' history and a tick to 1998-07-01 go through the
same code first, not measured; then a busy hour of their orders, carts and opens
(``bench/workloads.py``, 3 events per customer, as ``bench_stream_vs_batch.py --workload
live`` publishes them) is measured.

Each configuration runs in a fresh process (the collector settings are per process),
alternating, --rounds times:

- ``worker``: as the worker runs, with its collector settings (stream/cli/collector.py);
- ``default-gc``: Python's default collector thresholds, after a ``gc.freeze()`` (what
  the worker did before 2026-11-27).

    .venv/bin/python bench/bench_worker_batches.py --customers 20000

To compare two trees, put the other one first on ``PYTHONPATH`` (each configuration's
process imports whichever ``stream`` package Python finds first).

No assertions: numbers only (CPU seconds of the batch work, events per CPU second).
"""

from __future__ import annotations

import argparse
import gc
import inspect
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # after PYTHONPATH: another tree put first there is the one measured

import orjson  # noqa: E402

CONFIGS = {"worker": True, "default-gc": False}  # -> the worker's collector settings?


def _batches(values_in_order: list[bytes], customer_ids: list[str], partitions: int, batch: int) -> list[tuple[int, list[bytes]]]:
    """The records as the customer agent would take them: per partition, in order, in
    batches of up to ``batch``."""
    from stream.worker.table_keys import partition_of

    by_partition: list[list[bytes]] = [[] for _ in range(partitions)]
    batches: list[tuple[int, list[bytes]]] = []
    for value, customer_id in zip(values_in_order, customer_ids):
        partition = partition_of(customer_id, partitions)
        by_partition[partition].append(value)
        if len(by_partition[partition]) >= batch:
            batches.append((partition, by_partition[partition]))
            by_partition[partition] = []
    batches.extend((partition, values) for partition, values in enumerate(by_partition) if values)
    return batches


def run_one(config: str, customers: int, batch: int, workload: str, cprofile: str | None = None) -> dict:
    from stream.cli.collector import settle_collector
    from stream.demo.cdnow import cdnow_orders, time_ordered
    from stream.events.decode import parse_instant
    from stream.events.internal import encode_event, encode_tick
    from stream.processing.intake import decode_input
    from stream.rules import DEFAULT_RULES_PATH, load_rules
    from stream.worker.batch_work import process_records
    from tests.support.rocksdb_tables import RocksTables

    from bench.workloads import LIVE_START, live_burst

    partitions = 4
    tuned = CONFIGS[config]
    rules = load_rules(DEFAULT_RULES_PATH)

    def records(events: list[dict]) -> tuple[list[bytes], list[str]]:
        decoded = [decode_input(orjson.dumps(event), rules) for event in events]
        return [encode_event(event) for event in decoded], [event.customer_id for event in decoded]

    history = time_ordered(list(cdnow_orders(limit_customers=customers)))
    untimed: list[tuple[int, list[bytes]]] = []
    if workload == "live":
        customer_ids = sorted({event["customer_id"] for event in history})
        untimed = _batches(*records(history), partitions, batch)
        start = parse_instant(LIVE_START)
        untimed += [(partition, [encode_tick(start)]) for partition in range(partitions)]
        timed = live_burst(customer_ids, 3 * customers, start)
    else:
        timed = history
    batches = _batches(*records(timed), partitions, batch)
    events = len(timed)

    with tempfile.TemporaryDirectory() as folder:
        tables = RocksTables(Path(folder), partitions)

        # Trees before 2026-11-28 (A/B runs) had no rules-change sweep.
        sweep = {"sweep_customers": 1000} if "sweep_customers" in inspect.signature(process_records).parameters else {}

        def work(batches: list[tuple[int, list[bytes]]], first_offset: int) -> int:
            """The agent's work for each batch (its offset counts on from
            ``first_offset``); returns the changes made."""
            changes = 0
            for offset, (partition, values) in enumerate(batches, start=first_offset):
                store = tables.store(partition)
                output = process_records(values, store, rules, emitted_at_ms=1_700_000_000_000, **sweep)
                store.set_last_offset(offset)
                store.flush()
                changes += len(output.changes)
            return changes

        work(untimed, 0)
        if tuned:
            settle_collector()
        else:
            gc.freeze()  # what the worker did before the thresholds: a freeze only
        collections_before = sum(stat["collections"] for stat in gc.get_stats())
        profiler = None
        if cprofile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        started_cpu, started = time.process_time(), time.perf_counter()
        changes = work(batches, len(untimed))
        cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(cprofile)
        collections = sum(stat["collections"] for stat in gc.get_stats()) - collections_before
        tables.close()
    return {
        "config": config, "events": events, "batches": len(batches), "changes": changes, "cpu": cpu, "wall": wall,
        "collections": collections, "stream": __import__("stream").__file__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=50, help="records per batch (the worker's averaged about 50 in the throughput benchmark)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workload", default="history", choices=["history", "live"])
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, from: " + ", ".join(CONFIGS))
    parser.add_argument("--cprofile", metavar="FILE", help="write cProfile stats of the measured part of the first "
                        "configuration's first round to FILE (its CPU seconds then include the profiler's)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one configuration, print JSON
    args = parser.parse_args()
    if args.one:
        print(orjson.dumps(run_one(args.one, args.customers, args.batch, args.workload, args.cprofile)).decode())
        return

    configs = args.configs.split(",")
    results: dict[str, list[dict]] = {config: [] for config in configs}
    for round_number in range(args.rounds):
        for config in configs:
            profile = ["--cprofile", args.cprofile] if args.cprofile and round_number == 0 and config == configs[0] else []
            completed = subprocess.run(
                [sys.executable, __file__, "--one", config, "--customers", str(args.customers), "--batch", str(args.batch),
                 "--workload", args.workload, *profile],
                check=True, capture_output=True, text=True,
            )
            results[config].append(orjson.loads(completed.stdout.strip().splitlines()[-1]))
    print(f"machine: nproc {os.cpu_count()}, {platform.machine()}, CPython {platform.python_version()}")
    first = results[configs[0]][0]
    workload = "a live hour after the history of" if args.workload == "live" else "history:"
    print(f"{workload} first {args.customers} CDNOW customers, {first['events']:,} events in {first['batches']:,} batches "
          f"of up to {args.batch} per partition; {first['changes']:,} changes")
    best = {config: min(rows, key=lambda row: row["cpu"]) for config, rows in results.items()}
    reference = best[configs[0]]["cpu"]
    print(f"code: {first['stream']}")
    print(f"{'config':<12}{'CPU s (each round)':<30}{'events/CPU s (best)':>20}{'collections':>13}{'vs ' + configs[0]:>12}")
    for config, rows in results.items():
        row = best[config]
        rounds = ", ".join(f"{r['cpu']:.2f}" for r in rows)
        print(f"{config:<12}{rounds:<30}{row['events'] / row['cpu']:>20,.0f}{row['collections']:>13,}"
              f"{row['cpu'] / reference:>11.2f}x")


if __name__ == "__main__":
    main()
