"""Erasing a customer (stream/core/erasure.py): what is emitted, what is kept, and that
nothing from before the erasure can come back."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core import CustomerState, ErasureRequest, advance, apply, erase, new_state
from stream.core.timeutil import rfc3339_ms
from stream.events import validator

from .helpers import DAY, DEFAULT, HOUR, cart, email_open, ms, order


def feed(state: CustomerState, events, until: int | None = None) -> list:
    """Apply ``events`` to ``state`` in order (then advance to ``until``); the changes."""
    changes = [change for event in events for change in apply(state, event, DEFAULT)]
    if until is not None:
        changes += advance(state, until, DEFAULT)
    return changes


def erasure(t, customer: str = "c1", event_id: str = "erase-1") -> ErasureRequest:
    return ErasureRequest(event_id=event_id, customer_id=customer, occurred_at=ms(t))


def champion() -> CustomerState:
    """A customer with a segment and tags (five orders in a month, one with a coupon)."""
    state = new_state("c1")
    feed(state, [order(f"2024-01-{day:02d}T10:00:00Z", f"o{day}", 300, discounted=day == 5) for day in (1, 5, 9, 13, 17)])
    assert state.segment is not None and state.tags
    return state


def wire(change) -> dict:
    record = change.to_json_dict()
    record["emitted_at"] = "2024-06-01T00:00:00Z"
    return record


def test_the_customer_leaves_segment_and_tags_then_one_erasure_record() -> None:
    state = champion()
    segment, tags, seq = state.segment, state.tags, state.seq
    stub, changes = erase(state, erasure("2024-02-01T09:00:00Z"), DEFAULT)
    details = [(c.kind, c.from_segment, c.to_segment, c.tag, c.entered) for c in changes]
    assert details == [
        ("segment", segment, None, None, None),
        *[("tag", None, None, tag, False) for tag in tags],
        ("erasure", None, None, None, None),
    ]
    at = ms("2024-02-01T09:00:00Z")
    for change in changes:
        assert change.at == at
        assert change.cause.to_json_dict() == {"kind": "erasure", "event_id": "erase-1"}
        assert (change.segment, change.tags, change.timezone) == (None, (), None)
        assert set(change.scores.values()) == {None} and set(change.metrics.values()) == {None}
        assert list(validator("segment_change").iter_errors(wire(change))) == []
    assert [c.seq for c in changes] == list(range(seq + 1, seq + len(changes) + 1))
    assert len({c.change_id for c in changes}) == len(changes)


def test_what_is_kept_is_the_id_the_change_count_and_the_instant() -> None:
    state = champion()
    state.timezone = "Europe/Paris"
    stub, changes = erase(state, erasure("2024-02-01T09:00:00Z"), DEFAULT)
    assert stub.erased
    assert (stub.customer_id, stub.seq, stub.erased_at) == ("c1", changes[-1].seq, ms("2024-02-01T09:00:00Z"))
    assert stub == CustomerState("c1", seq=stub.seq, rules_tag=stub.rules_tag, erased_at=stub.erased_at)
    assert CustomerState.from_bytes(stub.to_bytes()) == stub
    assert b"Europe" not in stub.to_bytes() and len(stub.to_bytes()) < 100


def test_a_late_request_takes_effect_at_the_customers_latest_instant() -> None:
    state = champion()
    latest = state.evaluated_at
    _, changes = erase(state, erasure("2023-12-01T00:00:00Z"), DEFAULT)
    assert {c.at for c in changes} == {latest}


def test_a_customer_never_seen_gets_the_erasure_record_alone() -> None:
    stub, changes = erase(None, erasure("2024-02-01T09:00:00Z", customer="c9"), DEFAULT)
    assert [(c.kind, c.seq, c.customer_id) for c in changes] == [("erasure", 1, "c9")]
    assert stub.erased and stub.erased_at == ms("2024-02-01T09:00:00Z")


def test_a_request_made_again_is_confirmed_by_its_own_record_and_a_redelivery_by_none() -> None:
    stub, first = erase(champion(), erasure("2024-02-01T09:00:00Z"), DEFAULT)
    again, changes = erase(stub, erasure("2024-03-01T09:00:00Z", event_id="erase-2"), DEFAULT)
    # Nothing held to leave: the erasure record alone, numbered on.
    assert [(c.kind, c.seq, c.at, c.cause.event_id) for c in changes] == [
        ("erasure", first[-1].seq + 1, ms("2024-03-01T09:00:00Z"), "erase-2"),
    ]
    assert again.erased and again.erased_at == ms("2024-03-01T09:00:00Z") and again.seq == changes[0].seq
    redelivered, changes = erase(again, erasure("2024-02-01T09:00:00Z"), DEFAULT)
    assert changes == [] and redelivered.erased_at == ms("2024-03-01T09:00:00Z")


def test_events_from_before_the_erasure_are_ignored_and_later_ones_start_from_nothing() -> None:
    stub, erased = erase(champion(), erasure("2024-02-01T09:00:00Z"), DEFAULT)
    before = stub.to_bytes()
    # A refund, a cart and an order of before the erasure, arriving after it.
    for late in (order("2024-01-09T10:00:00Z", "o9", status="refunded"), cart("2024-01-31T10:00:00Z"),
                 order("2024-02-01T09:00:00Z", "o99", 50)):
        assert apply(stub, late, DEFAULT) == []
    assert stub.to_bytes() == before
    comeback = order("2024-03-01T10:00:00Z", "o100", 40)
    changes = apply(stub, comeback, DEFAULT)
    fresh = new_state("c1")
    expected = apply(fresh, comeback, DEFAULT)
    assert [(c.kind, c.to_segment, c.tag, c.at) for c in changes] == [(c.kind, c.to_segment, c.tag, c.at) for c in expected]
    assert (stub.segment, stub.tags, stub.orders.keys()) == (fresh.segment, fresh.tags, fresh.orders.keys())
    # Numbered on after the erasure: no change id can repeat one from before it.
    assert changes[0].seq == erased[-1].seq + 1
    assert not {c.change_id for c in changes} & {c.change_id for c in erased}
    assert not stub.erased and stub.erased_at == ms("2024-02-01T09:00:00Z")
    # The request delivered again after the comeback erases nothing: it is older than that.
    kept = stub.to_bytes()
    assert erase(stub, erasure("2024-02-01T09:00:00Z"), DEFAULT) == (stub, [])
    assert stub.to_bytes() == kept


@st.composite
def histories(draw: st.DrawFn) -> tuple[list, int]:
    """One customer's events over a year, and the index at which an erasure comes."""
    rng = random.Random(draw(st.integers(0, 10_000)))
    t = ms("2024-01-01T00:00:00Z")
    events = []
    for number in range(draw(st.integers(2, 40))):
        t += rng.randrange(1, 20 * DAY)
        roll = rng.random()
        if roll < 0.5:
            events.append(order(t, f"o{number}", rng.randrange(5, 500), discounted=rng.random() < 0.4))
        elif roll < 0.6 and number:
            events.append(order(t, f"o{rng.randrange(number)}", status=rng.choice(["cancelled", "refunded"])))
        elif roll < 0.8:
            events.append(cart(t, total=rng.choice([0, 30])))
        else:
            events.append(email_open(t))
    return events, draw(st.integers(1, len(events) - 1))


@settings(max_examples=60, deadline=None)
@given(histories())
def test_after_an_erasure_the_customer_is_as_if_nothing_before_it_had_happened(history) -> None:
    events, cut = history
    erased_at = events[cut - 1].occurred_at + HOUR
    state = new_state("c1")
    feed(state, events[:cut])
    state, _ = erase(state, erasure(erased_at), DEFAULT)
    after = [event for event in events[cut:] if event.occurred_at > erased_at]
    late = [order(erased_at - DAY, "o0", status="refunded"), cart(erased_at)]
    until = (after[-1].occurred_at if after else erased_at) + 400 * DAY
    emitted = feed(state, late + after, until)
    fresh = new_state("c1")
    expected = feed(fresh, after, until)

    def what(changes) -> list[tuple]:
        return [(c.kind, c.from_segment, c.to_segment, c.tag, c.entered, rfc3339_ms(c.at), c.cause.kind) for c in changes]

    assert what(emitted) == what(expected)
    assert (state.segment, state.tags, state.orders, state.open_days) == (
        fresh.segment, fresh.tags, fresh.orders, fresh.open_days,
    )
