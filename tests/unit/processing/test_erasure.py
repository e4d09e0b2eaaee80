"""An erasure request through the processor: the timer goes, the stub is what stays, and
a change of rules passes over it."""

from __future__ import annotations

from stream.core.events import MICROS_PER_UNIT, ErasureRequest, OrderEvent
from stream.core.timeutil import parse_rfc3339_ms
from stream.processing import MemoryStore, PartitionProcessor
from stream.rules import Rules

OLD = Rules()
NEW = Rules.model_validate({"scores": {"recency": {"thresholds": [10, 60, 120, 300]}}, "window_days": 365})
YEAR = 365 * 86_400_000


def order(customer: str, when: str, number: int) -> OrderEvent:
    return OrderEvent(
        event_id=f"{customer}-e{number}", customer_id=customer, occurred_at=parse_rfc3339_ms(when),
        order_id=f"{customer}-o{number}", status="placed", total_micros=80 * MICROS_PER_UNIT, discounted=False,
        refund_micros=None,
    )


def erasure(customer: str, when: str) -> ErasureRequest:
    return ErasureRequest(f"erase-{customer}", customer, parse_rfc3339_ms(when))


def test_the_erased_customers_timer_goes_and_time_changes_nothing_for_them() -> None:
    store = MemoryStore()
    processor = PartitionProcessor(OLD, store)
    for customer in ("alice", "bob"):
        processor.on_event(order(customer, "2024-01-02T10:00:00Z", 1))
    step = processor.on_event(erasure("alice", "2024-01-03T00:00:00Z"))
    assert step.changes[-1].kind == "erasure" and step.touched["alice"].erased
    later = processor.on_tick(parse_rfc3339_ms("2024-01-03T00:00:00Z") + 2 * YEAR)
    assert {change.customer_id for change in later.changes} == {"bob"}  # bob slid; alice is gone
    assert "alice" not in later.touched
    assert store.due(parse_rfc3339_ms("2030-01-01T00:00:00Z"), 10) == []  # bob's last timer fired too


def test_an_event_from_before_the_erasure_touches_nothing() -> None:
    store = MemoryStore()
    processor = PartitionProcessor(OLD, store)
    processor.on_event(order("alice", "2024-01-02T10:00:00Z", 1))
    processor.on_event(erasure("alice", "2024-02-01T00:00:00Z"))
    late = processor.on_event(order("alice", "2024-01-20T10:00:00Z", 2))
    assert late.changes == [] and late.touched == {}


def test_a_change_of_rules_passes_over_a_stub_and_a_comeback_starts_under_the_new_rules() -> None:
    store = MemoryStore()
    old = PartitionProcessor(OLD, store)
    old.on_event(order("alice", "2024-01-02T10:00:00Z", 1))
    old.on_event(order("bob", "2024-01-02T11:00:00Z", 1))
    old.on_event(erasure("alice", "2024-01-05T00:00:00Z"))
    new = PartitionProcessor(NEW, store)
    new.on_tick(parse_rfc3339_ms("2024-01-06T00:00:00Z"))
    swept = new.sweep_rules(10)
    assert "alice" not in swept.touched and {c.customer_id for c in swept.changes} <= {"bob"}
    assert new.rules_record().swept
    assert new.on_event(order("alice", "2024-01-04T10:00:00Z", 2)).changes == []  # before the erasure
    comeback = new.on_event(order("alice", "2024-01-07T10:00:00Z", 3))
    newcomer = new.on_event(order("carol", "2024-01-07T10:00:00Z", 3))

    def what(changes) -> list[tuple]:
        return [(c.kind, c.from_segment, c.to_segment, c.tag, c.entered, c.at, c.rules_version) for c in changes]

    assert what(comeback.changes) == what(newcomer.changes) and comeback.changes
    assert {c.rules_version for c in comeback.changes} == {NEW.version}
    assert not store.states["alice"].erased
