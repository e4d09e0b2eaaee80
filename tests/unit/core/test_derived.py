"""The speed-ups keep the definitions: cached calendars, integer ratios and the
per-state record summary must give exactly what the plain definitions give."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.core import CustomerState, advance, apply, day_of, day_start_ms, look_ahead, next_due, profile, rfc3339_ms
from stream.core.params import params_for
from stream.core.timeutil import calendar
from stream.core.timers import candidate_instants
from stream.rules import Rules

from .helpers import DAY, DEFAULT, HOUR, cart, email_open, ms, order, run
from .test_reference import EXAMPLES, RULES, histories

BASE = ms("2023-01-01T00:00:00Z")


def test_calendar_matches_day_of_and_day_start():
    for name in ("UTC", "America/New_York", "Australia/Lord_Howe", "America/Sao_Paulo"):
        zone = ZoneInfo(name)
        cal = calendar(zone)
        for t in range(BASE - 400 * DAY, BASE + 400 * DAY, 7 * HOUR + 1234):
            assert cal.day_of(t) == day_of(t, zone)
        for d in range(day_of(BASE, zone) - 400, day_of(BASE, zone) + 400):
            assert cal.day_start(d) == day_start_ms(d, zone)


def test_rfc3339_ms_matches_datetime_formatting():
    from datetime import UTC, datetime, timedelta

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for t in (0, -1, 1, 999, -86_400_001, 253_402_300_799_999, -62_135_596_800_000, BASE + 12_345):
        dt = epoch + timedelta(milliseconds=t)
        assert rfc3339_ms(t) == dt.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0") + f".{t % 1000:03d}Z"


def test_integer_ratios_equal_the_fraction_definitions():
    rules = Rules.model_validate(
        {"tags": {"coupon_lover": {"min_discounted_percent": "62.5"}, "overdue": {"gap_multiplier": "1.75"}}}
    )
    p = params_for(rules)
    share = Fraction(rules.tags.coupon_lover.min_discounted_percent) / 100
    mult = Fraction(rules.tags.overdue.gap_multiplier)
    for freq in range(1, 40):
        for disc in range(0, freq + 1):
            assert (disc * p.coupon_share_den >= p.coupon_share_num * freq) == (Fraction(disc, freq) >= share)
    for lifetime in range(2, 12):
        for span in range(0, 400, 7):
            limit = max(Fraction(rules.tags.overdue.min_days), mult * Fraction(span, lifetime - 1))
            gap_floor = (p.gap_multiplier_num * span) // (p.gap_multiplier_den * (lifetime - 1))
            assert max(p.overdue_min_days, gap_floor) + 1 == math.floor(limit) + 1
            for rec in range(0, 800, 13):
                fast = rec > p.overdue_min_days and rec * p.gap_multiplier_den * (lifetime - 1) > p.gap_multiplier_num * span
                assert fast == (rec > limit)


def test_params_are_cached_per_rules_object():
    assert params_for(DEFAULT) is params_for(DEFAULT)
    other = Rules(window_days=365)
    assert params_for(other).window_days == 365 and params_for(DEFAULT).window_days == 730


def test_summary_follows_every_change_of_the_records():
    """next_due after each step equals next_due on a fresh copy (no stale summary)."""
    events = [
        order(BASE, "o1", 120),
        email_open(BASE + 2 * DAY),
        cart(BASE + 3 * DAY),
        order(BASE + 5 * DAY, "o2", 30, discounted=True),
        order(BASE + 6 * DAY, "o1", status="refunded", refund=20),
        order(BASE + 7 * DAY, "o2", status="cancelled"),
        cart(BASE + 8 * DAY, action="cleared", total=0),
        order(BASE + 900 * DAY, "o3", 10),  # folds o1/o2 out of the window
    ]
    st = CustomerState("c1")
    for ev in events:
        apply(st, ev, DEFAULT)
        fresh = CustomerState.from_bytes(st.to_bytes())
        assert fresh.summary is None
        assert next_due(st, DEFAULT) == next_due(fresh, DEFAULT)
        assert candidate_instants(st, DEFAULT) == candidate_instants(fresh, DEFAULT)


def test_summary_is_not_part_of_the_value():
    st, _ = run([order(BASE, "o1", 50)])
    next_due(st, DEFAULT)
    assert st.summary is not None
    back = CustomerState.from_bytes(st.to_bytes())
    assert back.summary is None and back == st and back.to_bytes() == st.to_bytes()


def without_memos(state: CustomerState) -> CustomerState:
    """The same value with nothing derived kept: not the summary, not ``due_memo``."""
    fresh = CustomerState.from_bytes(state.to_bytes())
    fresh.due_memo = None
    return fresh


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.sampled_from(sorted(RULES)))
def test_the_kept_next_due_follows_every_change(history, tz):
    """``due_memo`` is encoded with the state; after every event, stretch of time and
    look-ahead (each asked for ``next_due`` first, so a memo is in place to go stale),
    ``next_due`` of the state, and of the state decoded from its bytes, equals what a
    copy without the memo computes, and so do the changes of the next step."""
    rules = RULES[tz]
    arrivals, pauses = history
    state = CustomerState("c")
    twin = CustomerState("c")  # the same steps, its memo dropped before each
    for event, pause in zip(arrivals, pauses):
        next_due(state, rules)
        twin.due_memo = None
        assert apply(state, event, rules) == apply(twin, event, rules)
        if pause:
            next_due(state, rules)
            twin.due_memo = None
            assert advance(state, event.occurred_at + pause, rules) == advance(twin, event.occurred_at + pause, rules)
        next_due(state, rules)
        look_ahead(state, rules)
        twin.due_memo = None
        look_ahead(twin, rules)
        expected = next_due(without_memos(state), rules)
        assert next_due(state, rules) == expected
        decoded = CustomerState.from_bytes(state.to_bytes())
        assert decoded.due_memo == state.due_memo
        assert next_due(decoded, rules) == expected


def test_a_memo_of_other_rules_is_not_trusted():
    """A state saved under other rules (a changed rules file) carries their next instant;
    it is worked out again, not taken."""
    st, _ = run([cart(BASE)])
    sooner = Rules.model_validate({"tags": {"cart_abandoner": {"after_hours": 2}}})
    assert next_due(st, DEFAULT) == BASE + 4 * HOUR
    decoded = CustomerState.from_bytes(st.to_bytes())
    assert decoded.due_memo == (params_for(DEFAULT).version_tag, BASE + 4 * HOUR)
    assert next_due(decoded, sooner) == BASE + 2 * HOUR
    assert decoded.due_memo == (params_for(sooner).version_tag, BASE + 2 * HOUR)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.sampled_from(sorted(RULES)))
def test_the_kept_evaluation_follows_every_change(history, tz):
    """The engine keeps its evaluation at evaluated_at (for profile) until the records
    change: after every event and every stretch of time, the profile must equal what a
    copy without it computes (dataclasses.replace copies the value, not what is
    derived)."""
    rules = RULES[tz]
    arrivals, pauses = history
    state = CustomerState("c")
    for event, pause in zip(arrivals, pauses):
        apply(state, event, rules)
        if pause:
            advance(state, event.occurred_at + pause, rules)
        fresh = replace(state)
        assert fresh.summary is None and fresh.evaluation is None
        assert profile(state, state.evaluated_at, rules) == profile(fresh, state.evaluated_at, rules)
