"""adopt_rules: a customer carried over a change of rules (stream/core/engine.py)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.core import CustomerState, adopt_rules, advance, apply, next_due, profile
from stream.core.params import params_for
from stream.events.schemas import validator
from stream.rules import Rules

from .helpers import DAY, DEFAULT, cart, email_open, ms, order, run, seg_changes
from .test_reference import EXAMPLES

# Rules that differ from the default ones only where a stored state can be carried over:
# thresholds, tag limits, and a shorter window.
TIGHTER = Rules.model_validate({"scores": {"recency": {"thresholds": [10, 60, 120, 300]}}})
LOOSER = Rules.model_validate({
    "scores": {"frequency": {"thresholds": [5, 3, 2, 1]}},
    "tags": {"lapsed": {"min_recency_days": 120}, "cart_abandoner": {"after_hours": 2}},
})
SHORTER_WINDOW = Rules.model_validate({"window_days": 365})
NEW_RULES = {"tighter": TIGHTER, "looser": LOOSER, "shorter_window": SHORTER_WINDOW}


def identity(change) -> tuple:
    """What a change is, without its id and sequence number (which count the customer's
    earlier changes) and its cause."""
    return (change.at, change.kind, change.from_segment, change.to_segment, change.tag, change.entered, change.segment,
            change.tags)


def test_what_the_new_rules_say_differently_is_emitted_at_the_instant_with_cause_rules() -> None:
    events = [order("2024-01-01T12:00:00Z", total=20)]
    since = ms("2024-01-20T00:00:00Z")  # recency 19: R 5 under the default rules, 4 under TIGHTER
    state, _ = run(events, until=since)
    under_new, _ = run(events, until=since, rules=TIGHTER)
    assert state.segment != under_new.segment
    changes = adopt_rules(state, since, TIGHTER)
    assert [(at, to) for at, _, to in seg_changes(changes)] == [(since, under_new.segment)]
    assert (state.segment, state.tags) == (under_new.segment, under_new.tags)
    assert {change.cause.kind for change in changes} == {"rules"}
    assert {change.rules_version for change in changes} == {TIGHTER.version}
    assert changes[0].to_json_dict()["cause"] == {"kind": "rules"}
    record = {**changes[0].to_json_dict(), "emitted_at": "2024-01-20T00:00:01.000Z"}
    assert list(validator("segment_change").iter_errors(record)) == []
    assert state.rules_tag == params_for(TIGHTER).version_tag
    assert state.evaluated_at == since


def test_no_earlier_instant_is_revisited_and_adopting_twice_changes_nothing() -> None:
    events = [order("2024-01-01T12:00:00Z")]
    state, _ = run(events, until="2024-01-05T00:00:00Z")
    evaluated_at = state.evaluated_at
    # Both rules move the customer on in between (recency thresholds 30/90 and 10/60): a
    # change of rules takes over at `since`; what either would have said before is not
    # emitted. (The processor advances every customer to the clock under the old rules
    # first: their timers have fired.)
    since = ms("2024-03-15T00:00:00Z")
    under_new, _ = run(events, until=since, rules=TIGHTER)
    changes = adopt_rules(state, since, TIGHTER)
    assert changes and all(change.at == since for change in changes)
    assert (state.segment, state.tags) == (under_new.segment, under_new.tags)
    assert evaluated_at < since
    assert adopt_rules(state, since, TIGHTER) == []


def test_rules_cannot_take_effect_before_the_customer_was_last_evaluated() -> None:
    state, _ = run([order("2024-01-01T12:00:00Z")])
    with pytest.raises(ValueError, match="before the customer's evaluated_at"):
        adopt_rules(state, ms("2024-01-01T00:00:00Z"), TIGHTER)


def test_apply_and_advance_stamp_the_rules_and_the_stamp_survives_encoding() -> None:
    state, _ = run([cart("2024-01-01T12:00:00Z")])
    assert state.rules_tag == params_for(DEFAULT).version_tag
    advance(state, ms("2024-02-01T00:00:00Z"), TIGHTER)
    assert state.rules_tag == params_for(TIGHTER).version_tag
    assert CustomerState.from_bytes(state.to_bytes()).rules_tag == state.rules_tag
    # Saved with its next instant (as the worker saves every state), the stamp is that
    # instant's tag and takes no bytes of its own.
    next_due(state, TIGHTER)
    assert b'"r"' not in state.to_bytes()
    assert CustomerState.from_bytes(state.to_bytes()).rules_tag == params_for(TIGHTER).version_tag
    next_due(state, DEFAULT)  # the next instant under other rules: the stamp is encoded
    assert CustomerState.from_bytes(state.to_bytes()).rules_tag == params_for(TIGHTER).version_tag
    # A state encoded before the stamp existed decodes without one.
    state.due_memo = None
    state.rules_tag = None
    assert CustomerState.from_bytes(state.to_bytes()).rules_tag is None


@st.composite
def split_histories(draw):
    """Time-ordered events of one customer, how many come before the change, and the
    instant of the change (between the last of those and the next event)."""
    start = ms("2022-01-01T05:00:00Z")
    instants = sorted(draw(st.lists(st.integers(0, 900 * DAY), min_size=1, max_size=14)))
    events = []
    for number, offset in enumerate(instants):
        when = start + offset
        kind = draw(st.sampled_from(["order", "order", "discounted", "refund", "cart", "open"]))
        if kind == "order" or kind == "discounted":
            events.append(order(when, f"o{number}", draw(st.sampled_from([20, 80, 300, 1200])), discounted=kind == "discounted"))
        elif kind == "refund":
            events.append(order(when, f"o{max(0, number - 1)}", status="refunded", refund=10))
        elif kind == "cart":
            events.append(cart(when, draw(st.sampled_from(["add", "cleared"]))))
        else:
            events.append(email_open(when))
    before = draw(st.integers(1, len(events)))
    last = events[before - 1].occurred_at
    following = events[before].occurred_at if before < len(events) else last + 400 * DAY
    since = last + draw(st.integers(0, following - last))
    until = max(since, events[-1].occurred_at) + draw(st.sampled_from([0, DAY, 45 * DAY, 400 * DAY]))
    return events, before, since, until


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(split_histories(), st.sampled_from(sorted(NEW_RULES)))
def test_after_the_change_the_customer_is_exactly_as_if_it_had_always_run_under_the_new_rules(history, name):
    events, before, since, until = history
    new_rules = NEW_RULES[name]
    # As the worker runs it: the old rules up to the partition clock, the change, the new rules.
    carried = CustomerState("c1")
    carried_changes = []
    for event in events[:before]:
        apply(carried, event, DEFAULT)
    advance(carried, since, DEFAULT)
    carried_changes.extend(adopt_rules(carried, since, new_rules))  # kept in memory, as within a batch
    for event in events[before:]:
        carried_changes.extend(apply(carried, event, new_rules))
    carried_changes.extend(advance(carried, until, new_rules))
    # Always under the new rules.
    always = CustomerState("c1")
    always_changes = []
    for event in events:
        always_changes.extend(apply(always, event, new_rules))
    always_changes.extend(advance(always, until, new_rules))

    assert (carried.segment, carried.tags) == (always.segment, always.tags)
    assert profile(carried, until, new_rules) == profile(always, until, new_rules)
    # The same changes after the instant of the change, at the same instants.
    assert [identity(c) for c in carried_changes if c.at > since] == [identity(c) for c in always_changes if c.at > since]
    assert all(c.at >= since for c in carried_changes if c.cause.kind == "rules")
