"""The customer's time zone (an optional field of every input event) is kept in the state
and carried on change records, for the playbooks' quiet hours."""

from __future__ import annotations

import dataclasses

from stream.core import CustomerState, apply

from .helpers import DEFAULT, cart, ms, order


def with_zone(event, zone):
    return dataclasses.replace(event, timezone=zone)


def test_changes_carry_the_latest_zone_and_late_events_do_not_override_it() -> None:
    state = CustomerState("c1")
    first = apply(state, with_zone(order("2024-03-01T10:00:00Z"), "Europe/Paris"), DEFAULT)
    assert first and all(change.timezone == "Europe/Paris" for change in first)
    assert first[0].to_json_dict()["timezone"] == "Europe/Paris"
    apply(state, with_zone(cart("2024-02-01T10:00:00Z"), "Asia/Tokyo"), DEFAULT)  # late
    assert state.timezone == "Europe/Paris"
    apply(state, with_zone(cart("2024-03-05T10:00:00Z"), "America/New_York"), DEFAULT)
    assert state.timezone == "America/New_York"
    # An event without a zone keeps the known one.
    apply(state, order("2024-03-06T10:00:00Z", order_id="o2"), DEFAULT)
    assert CustomerState.from_bytes(state.to_bytes()).timezone == "America/New_York"


def test_no_zone_leaves_records_as_before() -> None:
    state = CustomerState("c1")
    changes = apply(state, order(ms("2024-03-01T10:00:00Z")), DEFAULT)
    assert "timezone" not in changes[0].to_json_dict()
    assert b'"z"' not in state.to_bytes()
