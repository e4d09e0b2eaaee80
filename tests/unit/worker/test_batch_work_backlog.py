"""A tick that makes more customers due than ``timers_per_batch`` through the customer
agent's batch work on real RocksDB: the backlog is stored with the partition, the next
batches (the worker's nudges, or events) fire the rest, and the changes are those of an
unbounded batch."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from stream.core.events import MICROS_PER_UNIT, CartEvent, OrderEvent
from stream.core.timeutil import parse_rfc3339_ms
from stream.events.internal import encode_event, encode_nudge, encode_tick
from stream.rules import DEFAULT_RULES_PATH, load_rules
from stream.worker.batch_work import process_records
from tests.support.rocksdb_tables import RocksTables

RULES = load_rules(DEFAULT_RULES_PATH)
DAY = 86_400_000
START = parse_rfc3339_ms("2024-01-01T10:00:00Z")
CUSTOMERS = 40


def first_orders() -> list[bytes]:
    return [encode_event(OrderEvent(f"e{n}", f"c{n:03d}", START + n * 3_600_000, f"o{n}", "placed",
                                    (n + 5) * MICROS_PER_UNIT, False, None)) for n in range(CUSTOMERS)]


def run(tables: RocksTables, batches: list[list[bytes]], timers_per_batch: int | None) -> tuple[dict, list]:
    """Each batch through process_records and a flush, as the worker does; then nudges
    while the stored backlog says timers are left. Returns each customer's change ids
    and the (backlog stored after each batch, customers it touched) of every batch."""
    changes: dict[str, list[str]] = defaultdict(list)
    trail = []

    def one(values: list[bytes]):
        store = tables.store(0)
        output = process_records(values, store, RULES, 0, 1000, timers_per_batch)
        store.flush()
        for key, value in output.changes:
            changes[key.decode()].append(orjson.loads(value)["change_id"])
        trail.append((tables.store(0).timer_backlog(), len(output.profiles)))
        return output

    for values in batches:
        output = one(values)
    while output.first_due_left is not None:
        assert len(trail) < 1000
        output = one([encode_nudge()])
    return dict(changes), trail


@pytest.mark.parametrize("late_cart", [False, True])
def test_a_tick_left_unfinished_goes_on_in_the_next_batches_with_the_same_changes(tmp_path: Path, late_cart: bool) -> None:
    tick = START + 200 * DAY
    batches = [first_orders(), [encode_tick(tick)]]
    if late_cart:  # an event for a customer still due, before the nudges
        batches.append([encode_event(CartEvent("k1", "c039", tick - DAY, "cart-1", "add", 5 * MICROS_PER_UNIT))])
    reference_tables, tables = RocksTables(tmp_path / "reference", 1), RocksTables(tmp_path / "bounded", 1)
    try:
        reference, reference_trail = run(reference_tables, batches, None)
        got, trail = run(tables, batches, 7)
    finally:
        reference_tables.close()
        tables.close()
    assert reference_trail[1] == (None, CUSTOMERS)  # the tick re-evaluated every customer at once
    # At most 7 re-evaluated per batch (the late cart's customer besides), and the stored
    # backlog present until the last batch.
    assert all(touched <= 8 for _, touched in trail[1:])
    assert all(backlog is not None for backlog, _ in trail[1:-1]) and trail[-1][0] is None
    assert got == reference
