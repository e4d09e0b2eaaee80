"""Spec rules at their boundaries, through the engine (apply / advance / profile)."""

from __future__ import annotations

import pytest

from stream.core import CustomerState, advance, apply, look_ahead, next_due, profile, rfc3339_ms
from stream.rules import Rules

from .helpers import DAY, DEFAULT, HOUR, cart, email_open, ms, order, run, seg_changes, tag_changes

BASE = ms("2023-01-01T00:00:00Z")


def d(n: int, hour: float = 0) -> int:
    """00:00 UTC of 2023-01-01 + n days (+ hours)."""
    return BASE + n * DAY + int(hour * HOUR)


def at(n: int, hour: float = 0) -> str:
    return rfc3339_ms(d(n, hour))


def prof(st, now):
    return profile(st, now, DEFAULT)


# --- recency / R -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "limit,before,after", [(30, "New Customers", "Promising"), (90, "Promising", "About To Sleep"),
                           (180, "About To Sleep", "Hibernating"), (365, "Hibernating", "Lost")]
)
def test_recency_threshold_edges(limit, before, after):
    st, _ = run([order(d(0, 10), total=10)])  # F=1, M=1: FM=1 column
    assert prof(st, d(limit, 23.99))["recency_days"] == limit
    assert prof(st, d(limit, 23.99))["segment"] == before
    assert prof(st, d(limit + 1))["recency_days"] == limit + 1
    assert prof(st, d(limit + 1))["segment"] == after
    changes = advance(st, d(limit + 1) + 5, DEFAULT)
    assert (d(limit + 1), before, after) in seg_changes(changes)


def test_first_segment_at_order_instant():
    st, ch = run([order(d(0, 10), total=10)])
    assert seg_changes(ch) == [(d(0, 10), None, "New Customers")]
    assert ch[0].to_json_dict()["at"] == "2023-01-01T10:00:00.000Z"
    assert ch[0].to_json_dict()["cause"] == {"kind": "event", "event_id": ch[0].cause.event_id, "event_type": "order"}


# --- F / M --------------------------------------------------------------------------------


def test_frequency_threshold_edges():
    evs = [order(d(i, 9), order_id=f"o{i}", total=1) for i in range(10)]
    st = CustomerState("c1")
    fs = []
    for ev in evs:
        apply(st, ev, DEFAULT)
        fs.append(prof(st, ev.occurred_at)["f"])
    assert fs == [1, 2, 2, 3, 3, 4, 4, 4, 4, 5]


@pytest.mark.parametrize(
    "total,monetary,m",
    [(49.994999, 49.99, 1), (49.995, 50.0, 2), (50, 50.0, 2), (199.99, 199.99, 2), (200, 200.0, 3),
     (499.99, 499.99, 3), (500, 500.0, 4), (999.994999, 999.99, 4), (999.995, 1000.0, 5)],
)
def test_monetary_rounds_half_up_to_cents_then_scores(total, monetary, m):
    st, _ = run([order(d(0), total=total)])
    p = prof(st, d(0))
    assert p["monetary"] == monetary and p["m"] == m


def test_monetary_sums_micros_before_rounding():
    # 3 x 0.004 = 0.012 -> 0.01 (rounding each first would give 0.00)
    st, _ = run([order(d(0), order_id=f"o{i}", total=0.004) for i in range(3)])
    assert prof(st, d(0))["monetary"] == 0.01


def test_fm_rounding_through_the_grid():
    # F=2 (2 orders), M=3 (>=200): FM = floor(2.5 + 0.5) = 3 -> R5 row: Potential Loyalist
    st, _ = run([order(d(0), "a", 100), order(d(1), "b", 100)])
    p = prof(st, d(1))
    assert (p["r"], p["f"], p["m"], p["segment"]) == (5, 2, 3, "Potential Loyalist")
    # F=3? no: F=2 with M=5 -> FM = 4 -> Champions
    st, _ = run([order(d(0), "a", 600), order(d(1), "b", 600)])
    p = prof(st, d(1))
    assert (p["f"], p["m"], p["segment"]) == (2, 5, "Champions")


# --- window ---------------------------------------------------------------------------------


def test_order_leaves_the_window_at_midnight_of_day_plus_730():
    st, _ = run([order(d(0, 15), "a", 150), order(d(400, 8), "b", 150)])
    assert prof(st, d(730) - 1)["frequency"] == 2
    assert prof(st, d(730))["frequency"] == 1
    assert prof(st, d(730))["monetary"] == 150.0
    # At 00:00 of day 730: F 2 -> 1, M 3 -> 2, so FM 3 -> 2 in the R2 row
    changes = advance(st, d(730) + 1, DEFAULT)
    assert seg_changes(changes)[-1] == (d(730), "At Risk", "About To Sleep")
    p = prof(st, d(730))
    assert p["orders_lifetime"] == 2 and p["first_order_at"] == at(0, 15)


def test_folded_orders_keep_lifetime_first_and_last():
    evs = [order(d(0), "a", 10), order(d(10), "b", 10), order(d(2000), "c", 10)]
    st, _ = run(evs)
    assert len(st.orders) == 1 and st.folded_count == 2
    st2 = CustomerState.from_bytes(st.to_bytes())
    p = prof(st2, d(2000))
    assert (p["orders_lifetime"], p["first_order_at"], p["last_order_at"], p["frequency"]) == (
        3, at(0), at(2000), 1)


# --- cart_abandoner --------------------------------------------------------------------------


def test_cart_abandoner_from_exactly_4h_until_exactly_7_days():
    st, ch = run([cart(d(0, 10))])
    assert "cart_abandoner" not in prof(st, d(0, 14) - 1)["tags"]  # 3h59m59.999s
    assert "cart_abandoner" in prof(st, d(0, 14))["tags"]
    assert "cart_abandoner" in prof(st, d(7, 10) - 1)["tags"]
    assert "cart_abandoner" not in prof(st, d(7, 10))["tags"]
    changes = advance(st, d(30), DEFAULT)
    assert tag_changes(changes, "cart_abandoner") == [(d(0, 14), True), (d(7, 10), False)]
    assert all(c.cause.kind == "time" for c in changes)


@pytest.mark.parametrize("ev", [lambda: cart(d(0, 11), action="cleared", total=0), lambda: cart(d(0, 11), total=0)])
def test_cart_cleared_or_empty_is_not_abandoned(ev):
    st, _ = run([cart(d(0, 10)), ev()])
    assert "cart_abandoner" not in prof(st, d(1))["tags"]


def test_order_after_cart_clears_abandonment():
    st, ch = run([cart(d(0, 10)), order(d(0, 12), total=10)], until=d(10))
    assert tag_changes(ch, "cart_abandoner") == []
    # an order *before* the cart does not help
    st, ch = run([order(d(0, 9), total=10), cart(d(0, 10))], until=d(10))
    assert tag_changes(ch, "cart_abandoner") == [(d(0, 14), True), (d(7, 10), False)]


def test_order_at_same_instant_as_cart_counts_as_at_or_after():
    st, _ = run([cart(d(0, 10)), order(d(0, 10), total=10)])
    assert "cart_abandoner" not in prof(st, d(1))["tags"]


def test_cancelling_the_order_after_cart_makes_cart_abandoned_again():
    st, ch = run([cart(d(0, 10)), order(d(0, 12), "o1", 10), order(d(0, 15), "o1", status="cancelled")])
    assert "cart_abandoner" in prof(st, d(0, 15))["tags"]
    assert tag_changes(ch, "cart_abandoner") == [(d(0, 15), True)]


# --- refunds and cancellations ------------------------------------------------------------------


def test_partial_and_multiple_refunds_add_up_and_floor_at_zero():
    st, _ = run([order(d(0), "o1", 100), order(d(1), "o1", status="refunded", refund=30)])
    assert prof(st, d(1))["monetary"] == 70.0
    apply(st, order(d(2), "o1", status="refunded", refund=30), DEFAULT)
    assert prof(st, d(2))["monetary"] == 40.0
    apply(st, order(d(3), "o1", status="refunded", refund=50), DEFAULT)
    p = prof(st, d(3))
    assert p["monetary"] == 0.0 and p["frequency"] == 1 and p["recency_days"] == 3  # still counted


def test_refund_without_amount_refunds_everything():
    st, _ = run([order(d(0), "o1", 100), order(d(1), "o1", status="refunded")])
    assert prof(st, d(1))["monetary"] == 0.0


def test_refund_and_cancellation_before_their_order_are_held():
    st, _ = run([order(d(0), "o1", status="refunded", refund=25), order(d(1), "o1", 100)])
    assert prof(st, d(1))["monetary"] == 75.0
    st, ch = run([order(d(0), "o2", status="cancelled"), order(d(1), "o2", 100)])
    assert prof(st, d(1))["segment"] is None and ch == []


def test_cancellation_after_order_removes_it_and_segment_becomes_null():
    st, ch = run([order(d(0, 10), "o1", 100), order(d(2), "o1", status="cancelled")])
    assert seg_changes(ch) == [(d(0, 10), None, "Potential Loyalist"), (d(2), "Potential Loyalist", None)]
    p = prof(st, d(2))
    assert p["segment"] is None and p["r"] is None and p["recency_days"] is None and p["monetary"] is None
    last = ch[-1].to_json_dict()
    assert last["scores"] == {"r": None, "f": None, "m": None, "fm": None}
    assert last["metrics"]["frequency"] is None and last["to"] is None


def test_placed_after_cancelled_stays_cancelled_and_second_placed_is_ignored():
    st, _ = run([order(d(0), "o1", 100), order(d(1), "o1", status="cancelled"), order(d(2), "o1", 100)])
    assert prof(st, d(2))["segment"] is None
    st, ch = run([order(d(0), "o1", 100), order(d(1), "o1", 900)])
    p = prof(st, d(1))
    assert p["monetary"] == 100.0 and p["frequency"] == 1 and p["last_order_at"] == at(0)
    assert len(seg_changes(ch)) == 1


def test_duplicate_event_ids_change_nothing():
    first = order(d(0), "o1", 100, event_id="x1")
    refund = order(d(1), "o1", status="refunded", refund=10, event_id="x2")
    st, ch = run([first, refund, refund])
    assert prof(st, d(1))["monetary"] == 90.0
    before = st.to_bytes()
    assert apply(st, first, DEFAULT) == [] and apply(st, refund, DEFAULT) == []
    assert st.to_bytes() == before
    # a redelivery does not even advance time
    assert apply(st, order(d(500), "o9", 1, event_id="x1"), DEFAULT) == []
    assert st.evaluated_at == d(1)


# --- ordering in time ------------------------------------------------------------------------------


def test_late_event_changes_take_the_latest_processed_instant():
    st, ch = run([order(d(10), "o1", 10), email_open(d(20))])
    assert st.evaluated_at == d(20)
    late = apply(st, order(d(5), "o1", status="cancelled"), DEFAULT)
    assert seg_changes(late) == [(d(20), "New Customers", None)]
    assert st.evaluated_at == d(20)
    assert late[0].to_json_dict()["cause"]["event_type"] == "order"


def test_time_caused_change_comes_before_an_event_later_that_day():
    st, _ = run([order(d(0, 10), "o1", 10)])
    ch = apply(st, email_open(d(31, 9)), DEFAULT)  # R 5 -> 4 at 00:00 of day 31
    assert [(c.at, c.cause.kind) for c in ch] == [(d(31), "time")]
    ch = apply(st, order(d(200, 9), "o2", 10), DEFAULT)
    ats = [c.at for c in ch]
    assert ats == sorted(ats) and ats[-1] == d(200, 9) and ats[0] == d(60)  # one_time_buyer first
    assert [c.cause.kind for c in ch][-1] == "event"


def test_event_exactly_at_midnight_time_change_first():
    st, _ = run([order(d(0, 10), "o1", 10)])
    ch = apply(st, email_open(d(31)), DEFAULT)
    assert [(c.at, c.cause.kind) for c in ch] == [(d(31), "time")]


def test_advance_does_not_move_evaluated_at_when_nothing_fires():
    st, _ = run([order(d(0, 10), "o1", 10)])
    assert advance(st, d(20), DEFAULT) == []
    assert st.evaluated_at == d(0, 10)
    assert next_due(st, DEFAULT) == d(31)  # and the timer still points at the real change
    advance(st, d(31), DEFAULT)
    assert st.evaluated_at == d(31)


def test_next_due_is_strictly_after_checked_candidates():
    st, _ = run([order(d(0, 10), "o1", 10)])
    seen = []
    t = next_due(st, DEFAULT)
    while t is not None and len(seen) < 100:
        seen.append(t)
        advance(st, t, DEFAULT)
        t = next_due(st, DEFAULT)
    assert seen == sorted(set(seen)) and t is None


def test_look_ahead_skips_candidates_at_which_nothing_would_change():
    """``look_ahead`` (engine module docstring): two orders of 30 make F = 2, M = 2, FM = 2,
    where R 5 and R 4 are both Potential Loyalist and no tag moves at recency 31 or 60:
    the timer points at day 91 (R 3: Need Attention), not at day 31."""
    st, _ = run([order(d(0, 10), "a", 30), order(d(1, 10), "b", 30)])
    assert st.segment == "Potential Loyalist"
    assert next_due(st, DEFAULT) < d(1 + 31)  # possible changes first: overdue (needs 3 orders), R 5 -> 4
    look_ahead(st, DEFAULT)
    assert next_due(st, DEFAULT) == d(1 + 91)
    changes = advance(st, d(1 + 91), DEFAULT)
    assert seg_changes(changes) == [(d(1 + 91), "Potential Loyalist", "Need Attention")]
    # The same changes whichever instants advance is called at: a look-ahead changes no output.
    st_daily, _ = run([order(d(0, 10), "a", 30), order(d(1, 10), "b", 30)])
    daily = [change for day in range(2, 93) for change in advance(st_daily, d(day), DEFAULT)]
    assert daily == changes


# --- tags ---------------------------------------------------------------------------------------


def test_one_time_buyer_at_60_days_and_lapsed_at_180():
    st, ch = run([order(d(0, 10), total=10)], until=d(400))
    assert tag_changes(ch, "one_time_buyer") == [(d(60), True)]
    assert tag_changes(ch, "lapsed") == [(d(180), True)]
    st2, _ = run([order(d(0, 10), total=10)])
    assert "one_time_buyer" not in prof(st2, d(60) - 1)["tags"]
    assert "lapsed" not in prof(st2, d(180) - 1)["tags"]


def test_repeat_purchaser_until_recency_365():
    st, ch = run([order(d(0), "a", 10), order(d(5), "b", 10)], until=d(800))
    assert tag_changes(ch, "repeat_purchaser") == [(d(5), True), (d(5 + 366), False)]
    assert tag_changes(ch, "one_time_buyer") == []


def test_one_time_buyer_left_when_second_order_arrives():
    st, ch = run([order(d(0), "a", 10), order(d(70), "b", 10)])
    assert tag_changes(ch, "one_time_buyer") == [(d(60), True), (d(70), False)]


def test_overdue_gap_math():
    # 3 orders on days 0, 10, 20: gap = 10, limit = max(14, 20) = 20: overdue from recency 21.
    st, ch = run([order(d(0), "a", 10), order(d(10), "b", 10), order(d(20, 12), "c", 10)], until=d(500))
    assert tag_changes(ch, "overdue") == [(d(41), True), (d(20 + 366), False)]
    # gap 2 (days 0, 2, 4): limit = max(14, 4) = 14: overdue from recency 15
    st, ch = run([order(d(0), "a", 10), order(d(2), "b", 10), order(d(4), "c", 10)], until=d(60))
    assert tag_changes(ch, "overdue") == [(d(19), True)]
    # fractional gap: days 0, 0, 15 -> gap 7.5, 2*gap = 15 -> from recency 16
    st, ch = run([order(d(0), "a", 10), order(d(0, 5), "b", 10), order(d(15), "c", 10)], until=d(40))
    assert tag_changes(ch, "overdue") == [(d(31), True)]
    # two orders are not enough
    st, ch = run([order(d(0), "a", 10), order(d(1), "b", 10)], until=d(100))
    assert tag_changes(ch, "overdue") == []


def test_coupon_lover_needs_frequency_3_and_60_percent():
    evs = [order(d(i), f"o{i}", 10, discounted=i < 3) for i in range(5)]  # 3 of 5 = 60 %
    st, _ = run(evs)
    assert "coupon_lover" in prof(st, d(4))["tags"]
    evs = [order(d(i), f"o{i}", 10, discounted=i < 2) for i in range(4)]  # 2 of 4 = 50 %
    st, _ = run(evs)
    assert "coupon_lover" not in prof(st, d(3))["tags"]
    evs = [order(d(i), f"o{i}", 10, discounted=True) for i in range(2)]  # frequency 2
    st, _ = run(evs)
    assert "coupon_lover" not in prof(st, d(1))["tags"]
    # discounts leaving the window change the share: day 0 discounted order leaves at day 730
    evs = [order(d(0), "a", 10, discounted=True), order(d(400), "b", 10), order(d(401), "c", 10),
           order(d(402), "d", 10, discounted=True), order(d(403, 8), "e", 10, discounted=True)]
    st, ch = run(evs, until=d(740))
    # 3 of 5 = exactly 60 % from day 403; day 0's order leaves at 00:00 of day 730: 2 of 4
    assert tag_changes(ch, "coupon_lover") == [(d(403, 8), True), (d(730), False)]


def test_high_and_low_spender():
    st, _ = run([order(d(0), "a", 1000)])
    assert "high_spender" in prof(st, d(0))["tags"]
    st, _ = run([order(d(0), "a", 999.99)])
    assert "high_spender" not in prof(st, d(0))["tags"]
    st, _ = run([order(d(i), f"o{i}", 10) for i in range(4)])  # F=3, M=1
    assert "low_spender" in prof(st, d(3))["tags"]
    st, _ = run([order(d(i), f"o{i}", 10) for i in range(3)])  # F=2
    assert "low_spender" not in prof(st, d(2))["tags"]
    st, _ = run([order(d(i), f"o{i}", 50) for i in range(4)])  # F=3, M=3 (200)
    assert "low_spender" not in prof(st, d(3))["tags"]


def test_prospect_counts_email_opens_but_not_apple_privacy_opens():
    st, ch = run([email_open(d(0, 10), privacy=True)], until=d(100))
    assert ch == [] and prof(st, d(1))["tags"] == []
    st, ch = run([email_open(d(0, 10))], until=d(100))
    assert tag_changes(ch, "prospect") == [(d(0, 10), True), (d(30), False)]
    st, ch = run([cart(d(0, 10), action="cleared", total=0)], until=d(100))
    assert tag_changes(ch, "prospect") == [(d(0, 10), True), (d(30), False)]
    st, ch = run([email_open(d(0, 10)), order(d(5), "a", 10)])
    assert tag_changes(ch, "prospect") == [(d(0, 10), True), (d(5), False)]


def test_engaged_non_buyer():
    st, ch = run([email_open(d(0)), email_open(d(3)), email_open(d(3), privacy=True)], until=d(100))
    assert tag_changes(ch, "engaged_non_buyer") == [(d(3), True), (d(30), False)]
    # an order within 60 days blocks it; it applies again from day(order) + 60
    st, ch = run([order(d(0), "a", 10), order(d(1), "b", 10), email_open(d(50)), email_open(d(55))], until=d(100))
    assert tag_changes(ch, "engaged_non_buyer") == [(d(61), True), (d(80), False)]


def test_engaged_non_buyer_timer_independent_of_other_thresholds():
    rules = Rules.model_validate({"tags": {"one_time_buyer": {"min_recency_days": 70},
                                           "engaged_non_buyer": {"no_order_days": 45}}})
    st, ch = run([order(d(0), "a", 10), email_open(d(40)), email_open(d(41))], until=d(100), rules=rules)
    assert tag_changes(ch, "engaged_non_buyer") == [(d(45), True), (d(70), False)]


# --- business time zone ----------------------------------------------------------------------------


def test_day_boundaries_and_midnight_at_in_business_timezone():
    ny = Rules(timezone="America/New_York")
    # 2023-03-01T03:00Z is Feb 28 22:00 in New York
    st, ch = run([order("2023-03-01T03:00:00Z", total=10)], until="2023-04-05T00:00:00Z", rules=ny)
    segs = seg_changes(ch)
    # recency 31 is reached at 00:00 New York (EDT, -04:00) on March 31
    assert segs[-1] == (ms("2023-03-31T04:00:00Z"), "New Customers", "Promising")
    assert ch[-1].to_json_dict()["at"] == "2023-03-31T04:00:00.000Z"
    utc = DEFAULT
    st, ch = run([order("2023-03-01T03:00:00Z", total=10)], until="2023-04-05T00:00:00Z", rules=utc)
    assert seg_changes(ch)[-1] == (ms("2023-04-01T00:00:00Z"), "New Customers", "Promising")


# --- determinism -----------------------------------------------------------------------------------


def _history():
    return [
        order(d(0, 10), "a", 120, event_id="h1"),
        cart(d(3, 9), event_id="h2"),
        email_open(d(4), event_id="h3"),
        order(d(40), "b", 300, discounted=True, event_id="h4"),
        order(d(41), "b", status="refunded", refund=20, event_id="h5"),
        order(d(45), "c", 80, event_id="h6"),
        order(d(44), "c", status="cancelled", event_id="h7"),
        email_open(d(300), event_id="h8"),
    ]


def test_change_ids_are_deterministic_and_unique():
    _, a = run(_history(), until=d(2000))
    _, b = run(_history(), until=d(2000))
    assert [c.to_json_dict() for c in a] == [c.to_json_dict() for c in b]
    ids = [c.change_id for c in a]
    assert len(set(ids)) == len(ids) and all(len(i) == 32 for i in ids)
    int(ids[0], 16)


def test_state_round_trip_mid_history_gives_identical_results():
    events = _history()
    _, straight = run(events, until=d(2000))
    for cut in range(len(events) + 1):
        st = CustomerState("c1")
        out = []
        for i, ev in enumerate(events):
            if i == cut:
                st = CustomerState.from_bytes(st.to_bytes())
            out.extend(apply(st, ev, DEFAULT))
        st = CustomerState.from_bytes(st.to_bytes())
        out.extend(advance(st, d(2000), DEFAULT))
        assert [c.to_json_dict() for c in out] == [c.to_json_dict() for c in straight]


def test_change_json_shape():
    _, ch = run([order(d(0, 10), "a", 10), cart(d(1))], until=d(2))
    seg = ch[0].to_json_dict()
    assert list(seg) == ["change_id", "customer_id", "kind", "from", "to", "at", "cause", "segment", "tags",
                         "scores", "metrics", "rules_version"]
    tag = [c for c in ch if c.kind == "tag"][0].to_json_dict()
    assert tag["kind"] == "tag" and tag["tag"] == "cart_abandoner" and tag["entered"] is True
    assert "from" not in tag and tag["cause"] == {"kind": "time"}
    assert tag["metrics"] == {"recency_days": 1, "frequency": 1, "monetary": 10.0, "orders_lifetime": 1,
                              "first_order_at": at(0, 10), "last_order_at": at(0, 10)}
    assert tag["rules_version"] == DEFAULT.version


def test_segment_change_first_then_tags_sorted():
    st, _ = run([cart(d(0, 1)), email_open(d(0, 2))])
    assert st.tags == ("cart_abandoner", "prospect") or prof(st, d(0, 6))["tags"] == ["cart_abandoner", "prospect"]
    advance(st, d(0, 6), DEFAULT)
    ch = apply(st, order(d(0, 7), "a", 10), DEFAULT)
    assert [(c.kind, c.to_segment, c.tag, c.entered) for c in ch] == [
        ("segment", "New Customers", None, None),
        ("tag", None, "cart_abandoner", False),
        ("tag", None, "prospect", False),
    ]
    # every change of one evaluation carries the state after all of them
    assert {(c.segment, c.tags) for c in ch} == {("New Customers", ())}


def test_event_for_other_customer_is_refused():
    with pytest.raises(ValueError):
        apply(CustomerState("c1"), order(d(0), customer="c2"), DEFAULT)


def test_profile_is_pure_and_spec_shaped():
    st, _ = run([order(d(0), "a", 10)])
    before = st.to_bytes()
    p = profile(st, d(100), DEFAULT)
    assert st.to_bytes() == before
    assert list(p) == ["customer_id", "as_of", "recency_days", "frequency", "monetary", "orders_lifetime",
                       "first_order_at", "last_order_at", "r", "f", "m", "segment", "tags", "rules_version"]
    p = profile(CustomerState("nobody"), d(0), DEFAULT)
    assert p["segment"] is None and p["tags"] == [] and p["monetary"] is None
