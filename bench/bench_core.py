"""Benchmark of the segmentation core (``stream.core``) over the CDNOW history.

Runs the batch path (the very ``PartitionProcessor`` the worker runs, over an in-memory
store) on the CDNOW orders, or on a prefix of them, and times each phase separately in
the same run so they can be compared side by side:

- decode: raw JSON line -> typed event (``stream.events.decode_event``);
- apply: ``PartitionProcessor.on_event`` (apply, the advance to the partition clock,
  ``next_due`` and the timer index), and the part of it spent inside ``stream.core``
  (the processor's calls of ``apply``/``advance``/``next_due``, timed);
- state round trip: ``to_bytes`` and ``from_bytes`` of the touched customer's state after
  every event, as the stream worker does on its hot path (store, later load);
- final advance: the closing ``--until`` tick (time-caused changes of every customer);
- profiles: one ``profile`` per customer at the end;
- change encoding: ``Change.to_json_dict`` + ``orjson.dumps`` of every change.

Usage::

    .venv/bin/python bench/bench_core.py                       # the whole history
    .venv/bin/python bench/bench_core.py --events 15000        # a prefix
    .venv/bin/python bench/bench_core.py --file /tmp/cdnow.jsonl --until 1998-07-01

To compare two trees in one go, put the other tree first on ``PYTHONPATH`` (the bench
imports whichever ``stream`` package Python finds and prints which core it ran), e.g.
``PYTHONPATH=/tmp/orig_repo .venv/bin/python bench/bench_core.py``.

Without ``--file`` the history is read from the ``lifetimes`` package (see
``stream.demo.cdnow``) and time-ordered in memory. No assertions: numbers only.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import orjson

try:
    import stream  # noqa: F401  (installed, or on PYTHONPATH: lets A/B runs pick a tree)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import stream.processing.processor as processor_module  # noqa: E402
from stream.core.profile import profile  # noqa: E402
from stream.core.state import CustomerState  # noqa: E402
from stream.events import Rejection, decode_event, parse_instant  # noqa: E402
from stream.processing.processor import PartitionProcessor  # noqa: E402
from stream.processing.store import MemoryStore  # noqa: E402
from stream.rules import load_rules  # noqa: E402


def _history(path: str | None, limit: int | None) -> list[bytes]:
    if path:
        with open(path, "rb") as handle:
            lines = [line.rstrip(b"\r\n") for line in handle if line.strip()]
    else:
        from stream.demo.cdnow import cdnow_orders, time_ordered

        lines = [orjson.dumps(event) for event in time_ordered(list(cdnow_orders()))]
    return lines[:limit] if limit else lines


def _machine() -> str:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 0
    return (
        f"nproc {usable} (cpu_count {os.cpu_count()}), {platform.machine()}, "
        f"{platform.python_implementation()} {platform.python_version()}, {platform.platform(terse=True)}"
    )


class Phase:
    """Accumulated wall time of one phase, in nanoseconds, and how many operations."""

    def __init__(self, name: str, unit: str) -> None:
        self.name = name
        self.unit = unit
        self.ns = 0
        self.ops = 0

    def row(self, per_event: int) -> str:
        seconds = self.ns / 1e9
        per_op = self.ns / 1e3 / self.ops if self.ops else 0.0
        rate = self.ops / seconds if seconds else 0.0
        per_ev = self.ns / 1e3 / per_event if per_event else 0.0
        return (
            f"{self.name:<22}{self.ops:>9,} {self.unit:<10}{seconds:>9.3f} s{per_op:>10.2f} µs/op"
            f"{rate:>12,.0f} op/s{per_ev:>10.2f} µs/event"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", help="JSON-lines history (default: CDNOW from the lifetimes package)")
    parser.add_argument("--events", type=int, default=None, help="only the first N events (default: all)")
    parser.add_argument("--until", default="1998-07-01T00:00:00Z", help="final tick (RFC 3339 instant)")
    parser.add_argument("--rules", default=None, help="rules file (default: the shipped rules)")
    args = parser.parse_args()

    rules = load_rules(args.rules)
    until = parse_instant(args.until if "T" in args.until else f"{args.until}T00:00:00Z")
    if until is None:
        parser.error(f"--until {args.until!r} is not an RFC 3339 instant")
    lines = _history(args.file, args.events)

    print(f"machine: {_machine()}")
    print(f"history: {len(lines):,} events, rules {rules.version} (timezone {rules.timezone}), until {args.until}")

    decode = Phase("decode", "events")
    apply = Phase("apply (on_event)", "events")
    to_bytes = Phase("state to_bytes", "states")
    from_bytes = Phase("state from_bytes", "states")
    final = Phase("final advance (tick)", "customers")
    profiles = Phase("profiles", "customers")
    encode = Phase("change encoding", "changes")

    # Attribute apply time to the core: the processor calls these three core functions.
    in_core = Phase("  of which in core", "calls")

    def timed(fn):
        def wrapper(*args):
            t0 = time.perf_counter_ns()
            try:
                return fn(*args)
            finally:
                in_core.ns += time.perf_counter_ns() - t0
                in_core.ops += 1

        return wrapper

    for name in ("apply", "advance", "next_due"):
        setattr(processor_module, name, timed(getattr(processor_module, name)))

    store = MemoryStore()
    processor = PartitionProcessor(rules, store)
    changes = []
    state_bytes = 0
    clock = time.perf_counter_ns
    for raw in lines:
        t0 = clock()
        event = decode_event(
            raw,
            reporting_currency=rules.reporting_currency,
            currency_rates=rules.currency_rates,
            max_event_bytes=rules.max_event_bytes,
        )
        t1 = clock()
        decode.ns += t1 - t0
        decode.ops += 1
        if isinstance(event, Rejection):
            continue
        step = processor.on_event(event)
        t2 = clock()
        apply.ns += t2 - t1
        apply.ops += 1
        changes.extend(step.changes)
        # The worker's hot path: store the touched state, load it again for the next event.
        for state in step.touched.values():
            t3 = clock()
            data = state.to_bytes()
            t4 = clock()
            CustomerState.from_bytes(data)
            t5 = clock()
            to_bytes.ns += t4 - t3
            from_bytes.ns += t5 - t4
            to_bytes.ops += 1
            from_bytes.ops += 1
            state_bytes += len(data)

    event_changes = len(changes)
    t0 = clock()
    changes.extend(processor.on_tick(until).changes)
    final.ns = clock() - t0
    final.ops = len(store.states)

    now = store.clock()
    t0 = clock()
    for customer_id in sorted(store.states):
        state = store.states[customer_id]
        profile(state, max(now, state.evaluated_at or now), rules)
    profiles.ns = clock() - t0
    profiles.ops = len(store.states)

    t0 = clock()
    for change in changes:
        orjson.dumps(change.to_json_dict())
    encode.ns = clock() - t0
    encode.ops = len(changes)

    events = apply.ops
    print(f"core: {__import__('stream.core', fromlist=['x']).__file__}")
    print(
        f"result: {len(store.states):,} customers, {event_changes:,} changes from events "
        f"+ {len(changes) - event_changes:,} at the final tick; "
        f"mean state {state_bytes / max(1, to_bytes.ops):,.0f} bytes"
    )
    print()
    print(f"{'phase':<22}{'ops':>9} {'':<10}{'total':>11}{'per op':>16}{'rate':>17}{'per event':>19}")
    for phase in (decode, apply, in_core, to_bytes, from_bytes, final, profiles, encode):
        print(phase.row(events))
    core = apply.ns + final.ns + profiles.ns + encode.ns
    round_trip = to_bytes.ns + from_bytes.ns
    print()
    print(
        f"decode+apply: {(decode.ns + apply.ns) / 1e3 / events:.2f} µs/event, "
        f"{events / ((decode.ns + apply.ns) / 1e9):,.0f} events/s"
    )
    print(
        f"state round trip vs apply: {round_trip / 1e3 / max(1, to_bytes.ops):.2f} µs per round trip, "
        f"{apply.ns / 1e3 / events:.2f} µs per apply (round trip = {round_trip / max(1, apply.ns):.0%} of apply)"
    )
    print(
        f"batch core total (apply + final advance + profiles + change encoding): {core / 1e9:.2f} s, "
        f"{core / 1e3 / events:.2f} µs/event, {events / (core / 1e9):,.0f} events/s"
    )


if __name__ == "__main__":
    main()
