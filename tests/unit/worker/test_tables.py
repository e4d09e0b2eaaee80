"""The worker's TableStore on real RocksDB gives the processor the same results as the
batch command's MemoryStore, batch after batch."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from stream.core.events import CartEvent, OrderEvent
from stream.processing import MemoryStore, PartitionProcessor
from stream.rules import DEFAULT_RULES_PATH, load_rules
from stream.worker.tables import HISTORY_LIMIT, history_entry, read_history
from tests.support.rocksdb_tables import RocksTables

DAY = 86_400_000
RULES = load_rules(DEFAULT_RULES_PATH)


def history(seed: int, customers: int, events: int) -> list:
    rng = random.Random(seed)
    clock = 1_700_000_000_000
    made = []
    for number in range(events):
        clock += rng.randrange(0, 3 * DAY)
        customer = f"c{rng.randrange(customers)}"
        if rng.random() < 0.7:
            made.append(OrderEvent(
                event_id=f"e{number}", customer_id=customer, occurred_at=clock, order_id=f"o{number}",
                status="placed", total_micros=rng.randrange(1, 500) * 1_000_000, discounted=rng.random() < 0.3,
                refund_micros=None,
            ))
        else:
            made.append(CartEvent(
                event_id=f"e{number}", customer_id=customer, occurred_at=clock, cart_id=f"cart{number}",
                action=rng.choice(["created", "updated", "checked_out"]), cart_total_micros=rng.randrange(1, 300) * 1_000_000,
            ))
    return made


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rocksdb_store_matches_memory_store(tmp_path: Path, seed: int) -> None:
    events = history(seed, customers=40, events=600)
    rng = random.Random(seed)
    memory = PartitionProcessor(RULES, MemoryStore())
    tables = RocksTables(tmp_path, 1)
    try:
        expected, got = [], []
        position = 0
        while position < len(events):
            size = rng.randrange(1, 60)  # batches of varying size, flushed like the worker's
            store = tables.store(0)
            processor = PartitionProcessor(RULES, store)
            for event in events[position:position + size]:
                expected.extend(change.change_id for change in memory.on_event(event).changes)
                got.extend(change.change_id for change in processor.on_event(event).changes)
            if rng.random() < 0.3:  # a tick far ahead: many timers due at once
                now = events[min(position + size, len(events) - 1)].occurred_at + rng.randrange(DAY, 200 * DAY)
                expected.extend(change.change_id for change in memory.on_tick(now).changes)
                got.extend(change.change_id for change in processor.on_tick(now).changes)
            store.flush()
            position += size
        assert got == expected
        assert len(expected) > 100
    finally:
        tables.close()


def test_due_returns_persisted_and_new_timers_in_order_up_to_the_limit(tmp_path: Path) -> None:
    tables = RocksTables(tmp_path, 1)
    try:
        store = tables.store(0)
        for due, customer in [(10, "a"), (30, "b"), (50, "c")]:
            store.reschedule(customer, None, due)
        store.flush()
        store = tables.store(0)
        store.reschedule("d", None, 20)
        store.reschedule("e", None, 40)
        store.reschedule("b", 30, 45)  # a persisted timer moved later
        assert store.due(5, 10) == []
        assert store.due(25, 10) == [(10, "a"), (20, "d")]
        assert store.due(48, 1) == [(10, "a")]  # limit: the rest stays due
        assert store.due(48, 10) == [(10, "a"), (20, "d"), (40, "e"), (45, "b")]
        store.reschedule("a", 10, None)
        store.reschedule("d", 20, None)
        assert store.due(100, 10) == [(40, "e"), (45, "b"), (50, "c")]
    finally:
        tables.close()


def test_history_keeps_the_latest_entries_across_batches(tmp_path: Path) -> None:
    tables = RocksTables(tmp_path, 1)
    try:
        def change(customer: str, seq: int) -> dict:
            return {"change_id": f"{customer}-{seq}", "kind": "segment", "from": None, "to": "New Customers", "at": "t",
                    "cause": f"e{seq}", "customer_id": customer, "metrics": {"frequency": seq}, "emitted_at": "later"}

        # Two customers whose ids could run into each other's keys without the length prefix.
        customers = ["c1", "c1\x00", "c"]
        changes = {customer: [change(customer, seq) for seq in range(1, HISTORY_LIMIT + 8)] for customer in customers}
        for start in range(0, HISTORY_LIMIT + 7, 5):  # batches of 5, each a fresh store as in the worker
            store = tables.store(0)
            for customer in customers:
                for record in changes[customer][start:start + 5]:
                    store.add_history(customer, int(record["change_id"].rsplit("-", 1)[1]), record)
            records = store.flush()
            # One record per change, and a delete per change that left the history.
            seqs = range(start + 1, min(start + 5, HISTORY_LIMIT + 7) + 1)
            assert len(records) == len(customers) * (len(seqs) + sum(1 for seq in seqs if seq > HISTORY_LIMIT))
        db = tables.db("recent_changes", 0)
        for customer in customers:
            stored = read_history(db, customer)
            assert stored == [history_entry(record) for record in changes[customer][-HISTORY_LIMIT:]]
            assert "metrics" not in stored[0] and "emitted_at" not in stored[0]
        assert read_history(db, "nobody") == []
        # A batch processed again writes the same keys: nothing changes.
        store = tables.store(0)
        for record in changes["c1"][-5:]:
            store.add_history("c1", int(record["change_id"].rsplit("-", 1)[1]), record)
        store.flush()
        assert read_history(db, "c1") == [history_entry(record) for record in changes["c1"][-HISTORY_LIMIT:]]
    finally:
        tables.close()


def test_a_change_of_rules_on_rocksdb_matches_the_memory_store(tmp_path: Path) -> None:
    """The sweep walks RocksDB's keys in batches of varying size, across flushes, and
    ends with the same changes and states as one sweep over the memory store."""
    from stream.core.profile import profile
    from stream.rules import Rules

    new_rules = Rules.model_validate({"scores": {"recency": {"thresholds": [10, 60, 120, 300]}}})
    events = history(4, customers=50, events=400)
    rng = random.Random(4)
    memory_store = MemoryStore()
    memory = PartitionProcessor(RULES, memory_store)
    tables = RocksTables(tmp_path, 1)
    try:
        expected, got = set(), set()
        store = tables.store(0)
        processor = PartitionProcessor(RULES, store)
        for event in events[:300]:
            expected.update(change.change_id for change in memory.on_event(event).changes)
            got.update(change.change_id for change in processor.on_event(event).changes)
        store.flush()
        assert tables.store(0).customer_ids_after(None, 1000) == memory_store.customer_ids_after(None, 1000)
        assert tables.store(0).customer_ids_after("c2", 3) == memory_store.customer_ids_after("c2", 3)

        memory = PartitionProcessor(new_rules, memory_store)
        expected.update(change.change_id for change in memory.sweep_rules(10_000).changes)
        position = 300
        while True:
            store = tables.store(0)
            processor = PartitionProcessor(new_rules, store)
            for event in events[position:position + 20]:
                got.update(change.change_id for change in processor.on_event(event).changes)
            position += 20
            got.update(change.change_id for change in processor.sweep_rules(rng.randrange(1, 9)).changes)
            store.flush()
            if position >= len(events) and processor.rules_record().swept:
                break
        for event in events[300:]:
            expected.update(change.change_id for change in memory.on_event(event).changes)
        assert got == expected
        store = tables.store(0)
        clock = store.clock()
        assert clock == memory_store.clock()
        for customer_id in memory_store.states:
            assert profile(store.load(customer_id), clock, new_rules) == profile(memory_store.states[customer_id], clock, new_rules)
    finally:
        tables.close()


def test_the_timer_repair_after_a_crash_leaves_a_customer_not_yet_moved_to_new_rules_its_timer(tmp_path: Path) -> None:
    """After an unclean stop the worker repairs each partition's timer index before its
    first batch, possibly in the middle of a change of rules. Found by killing a worker
    mid-sweep: the repair worked each timer out under the new rules, moving a customer
    not yet moved to them to an instant the processor does not know of; when the sweep
    then moved it to the new rules with the same next instant as before, nothing was
    written, and its time-caused changes never came."""
    from stream.core.timeutil import parse_rfc3339_ms
    from stream.rules import Rules

    new_rules = Rules.model_validate({"scores": {"recency": {"thresholds": [14, 45, 120, 300]}}, "window_days": 365})
    # One-time buyers of 1997-01-01 (as in CDNOW): the old rules' next instant and the
    # new rules' one after the change are both 06-30 (lapsed), the new rules worked out
    # on the old state name 05-02, before the change.
    orders = [
        OrderEvent(f"e{n}", f"c{n}", parse_rfc3339_ms("1997-01-01T12:00:00Z"), f"o{n}", "placed", 20_000_000, False, None)
        for n in range(5)
    ]
    since, until = parse_rfc3339_ms("1997-06-01T00:00:00Z"), parse_rfc3339_ms("1998-07-01T00:00:00Z")

    memory_store = MemoryStore()
    memory = PartitionProcessor(RULES, memory_store)
    expected = set()
    for order in orders:
        expected.update(c.change_id for c in memory.on_event(order).changes)
    expected.update(c.change_id for c in memory.on_tick(since).changes)
    memory = PartitionProcessor(new_rules, memory_store)
    expected.update(c.change_id for c in memory.sweep_rules(100).changes)
    later = memory.on_tick(until).changes
    assert len(later) == 10  # lapsed, then Lost, for each
    expected.update(c.change_id for c in later)

    tables = RocksTables(tmp_path, 1)
    try:
        store = tables.store(0)
        processor = PartitionProcessor(RULES, store)
        got = set()
        for order in orders:
            got.update(c.change_id for c in processor.on_event(order).changes)
        got.update(c.change_id for c in processor.on_tick(since).changes)
        store.flush()
        # The restart under the new rules: the repair, then the batch, in one store.
        store = tables.store(0)
        store.repair_timers(new_rules)
        processor = PartitionProcessor(new_rules, store)
        got.update(c.change_id for c in processor.sweep_rules(100).changes)
        store.flush()
        store = tables.store(0)
        got.update(c.change_id for c in PartitionProcessor(new_rules, store).on_tick(until).changes)
        store.flush()
        assert got == expected
    finally:
        tables.close()
