"""The processor over the in-memory store: clocks, timers and what a tick costs."""

from __future__ import annotations

from stream.core.events import MICROS_PER_UNIT, OrderEvent
from stream.core.timeutil import parse_rfc3339_ms
from stream.processing import MemoryStore, PartitionProcessor
from stream.rules import load_rules

RULES = load_rules(None)


def order(customer: str, when: str, event_id: str, total: float = 20.0) -> OrderEvent:
    return OrderEvent(
        event_id=event_id, customer_id=customer, occurred_at=parse_rfc3339_ms(when), order_id=event_id,
        status="placed", total_micros=int(total * MICROS_PER_UNIT), discounted=False, refund_micros=None,
    )


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    def load(self, customer_id: str):
        self.loads += 1
        return super().load(customer_id)


def test_time_caused_change_fires_on_a_tick_with_no_event_for_the_customer() -> None:
    processor = PartitionProcessor(RULES, MemoryStore())
    processor.on_event(order("alice", "2024-01-01T12:00:00Z", "e1"))
    # Recency 31 days: R drops from 5 to 4 at 00:00 of 2024-02-01.
    before = processor.on_tick(parse_rfc3339_ms("2024-01-31T23:59:59Z"))
    assert [c for c in before.changes if c.kind == "segment"] == []
    after = processor.on_tick(parse_rfc3339_ms("2024-02-01T00:00:00Z"))
    segment_changes = [c for c in after.changes if c.kind == "segment"]
    assert [(c.from_segment, c.to_segment, c.at) for c in segment_changes] == [
        ("New Customers", "Promising", parse_rfc3339_ms("2024-02-01T00:00:00Z"))
    ]
    assert segment_changes[0].cause.kind == "time"


def test_a_tick_loads_only_the_customers_that_are_due() -> None:
    store = CountingStore()
    processor = PartitionProcessor(RULES, store)
    for i in range(200):
        processor.on_event(order(f"c{i}", "2024-01-01T12:00:00Z", f"e{i}"))
    processor.on_event(order("late-buyer", "2024-03-01T12:00:00Z", "x"))
    store.loads = 0
    # Only a day later: nobody's next instant has come.
    processor.on_tick(parse_rfc3339_ms("2024-03-02T12:00:00Z"))
    assert store.loads == 0


def test_the_clock_never_goes_back() -> None:
    store = MemoryStore()
    processor = PartitionProcessor(RULES, store)
    processor.on_tick(parse_rfc3339_ms("2024-05-01T00:00:00Z"))
    processor.on_tick(parse_rfc3339_ms("2024-04-01T00:00:00Z"))
    assert store.clock() == parse_rfc3339_ms("2024-05-01T00:00:00Z")


def test_an_event_moves_the_clock_and_fires_other_customers_due_changes_first() -> None:
    processor = PartitionProcessor(RULES, MemoryStore())
    processor.on_event(order("alice", "2024-01-01T12:00:00Z", "a1"))
    result = processor.on_event(order("bob", "2024-03-01T12:00:00Z", "b1"))
    alice = [c for c in result.changes if c.customer_id == "alice"]
    bob = [c for c in result.changes if c.customer_id == "bob"]
    assert alice and all(c.cause.kind == "time" for c in alice)
    assert bob and result.changes.index(alice[-1]) < result.changes.index(bob[0])
