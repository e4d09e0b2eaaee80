"""The state stays bounded, encodes deterministically and dedupes within its horizon."""

from __future__ import annotations

from stream.core import CustomerState, advance, apply, profile
from stream.core.state import DEDUPE_KEEP_LAST, DEDUPE_MAX_IDS, id_key

from .helpers import DAY, DEFAULT, cart, email_open, ms, order, run

BASE = ms("2023-01-01T00:00:00Z")


def test_empty_state_round_trip():
    st = CustomerState("ü-1")
    assert CustomerState.from_bytes(st.to_bytes()) == st
    assert st.to_bytes() == b'{"v":1,"id":"\xc3\xbc-1"}'


def test_state_does_not_grow_with_history_length():
    events = []
    for i in range(0, 3 * 365, 2):
        t = BASE + i * DAY + 3_600_000
        events.append(email_open(t))
        if i % 6 == 0:
            events.append(cart(t + 60_000))
        if i % 30 == 0:
            events.append(order(t + 120_000, f"o{i}", 25))
    st, _ = run(events)
    size = len(st.to_bytes())
    assert size < 6000, size
    assert st.folded_count > 0 and len(st.orders) <= 25
    assert len(st.open_days) <= 30
    assert len(st.seen) <= max(DEDUPE_KEEP_LAST, 8 * 2)  # ~2 events a day for 7 days


def test_redelivery_after_the_customer_clock_jumped_is_still_detected():
    ev = cart(BASE)
    st, _ = run([ev])
    advance(st, BASE + 30 * DAY, DEFAULT)  # fires cart/prospect changes: L moves 30 days
    assert st.evaluated_at is not None and st.evaluated_at > BASE + 7 * DAY
    before = st.to_bytes()
    assert apply(st, ev, DEFAULT) == [] and st.to_bytes() == before


def test_dedupe_ids_are_capped():
    events = [email_open(BASE + i * 1000) for i in range(DEDUPE_MAX_IDS + 200)]
    st, _ = run(events)
    assert len(st.seen) == DEDUPE_MAX_IDS
    # the oldest are forgotten, the newest remembered
    assert apply(st, events[-1], DEFAULT) == []


def test_refund_redelivery_is_caught_by_its_order_record_beyond_the_horizon():
    refund = order(BASE + DAY, "o1", status="refunded", refund=10)
    events = [order(BASE, "o1", 100), refund] + [email_open(BASE + 2 * DAY + i * DAY) for i in range(60)]
    st, _ = run(events)
    assert not st.has_seen(id_key(refund.event_id))  # out of the general horizon
    assert apply(st, refund, DEFAULT) == []
    assert profile(st, st.evaluated_at, DEFAULT)["monetary"] == 90.0


def test_encoding_is_deterministic_and_lossless_mid_history():
    events = [order(BASE, "o1", 10, discounted=True), order(BASE + DAY, "o2", status="cancelled"),
              order(BASE + 2 * DAY, "o1", status="refunded"), cart(BASE + 3 * DAY), email_open(BASE + 4 * DAY)]
    st, _ = run(events)
    raw = st.to_bytes()
    back = CustomerState.from_bytes(raw)
    assert back == st and back.to_bytes() == raw
