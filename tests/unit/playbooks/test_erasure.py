"""A customer's erasure through decide(): changes it caused trigger nothing and leave no
record; the erasure record gives one notice (valid against its schema) and an empty
state, so the customer's next change is decided as a new customer's."""

from __future__ import annotations

from typing import Any

import pytest

from stream.core.timeutil import DAY_MS, HOUR_MS, rfc3339_ms
from stream.events import validator
from stream.playbooks import PolicyState, UnknownKind, action_id, decide, erasure_notice, load_playbook

from .helpers import customers_outside_holdout, email_action, make_playbook, ms, segment_change, tag_change

T = ms("2024-03-01T12:00:00Z")
ERASED_AT = T + 2 * HOUR_MS
ERASURE_CAUSE = {"kind": "erasure", "event_id": "erase-0001"}
NULL_SCORES = {"r": None, "f": None, "m": None, "fm": None}


def erasure_record(customer: str = "cust-1", at: int = ERASED_AT, **extra: Any) -> dict[str, Any]:
    """The record of kind erasure as the worker emits it (schemas/segment_change.schema.json)."""
    record = segment_change(None, None, at=at, customer=customer, cause=dict(ERASURE_CAUSE))
    for field in ("from", "to"):
        del record[field]
    record.update(kind="erasure", segment=None, tags=[], scores=dict(NULL_SCORES), **extra)
    return record


def erasure_sequence(customer: str, segment: str, tags: list[str]) -> list[dict[str, Any]]:
    """What the worker emits for an erased customer, in order (the contract)."""
    changes = [segment_change(None, segment, at=ERASED_AT, customer=customer, cause=dict(ERASURE_CAUSE))]
    changes += [tag_change(tag, False, at=ERASED_AT, customer=customer, cause=dict(ERASURE_CAUSE)) for tag in tags]
    return [*changes, erasure_record(customer)]


def playbook_reacting_to_leaving():
    """Every action here fires on one of the changes an erasure causes."""
    return make_playbook(
        [
            email_action("gone", {"from": "*", "to": None}, cooldown_days=7),
            email_action("left_cart", {"leave_tag": "cart_abandoner"}),
            {"name": "flags_off", "trigger": {"leave_tag": "high_spender"}, "channel": "crm_task", "params": {"task": "clear"}, "expires_after_hours": 24},
        ],
        backfill={"horizon_hours": 48, "act": True},  # act lifts backfill and rules_changed, never an erasure
    )


def test_changes_caused_by_an_erasure_trigger_nothing_and_leave_no_record() -> None:
    pb = playbook_reacting_to_leaving()
    [customer] = customers_outside_holdout(pb, 1)
    state = None
    records: list[dict[str, Any]] = []
    for change in erasure_sequence(customer, "At Risk", ["cart_abandoner", "high_spender"])[:-1]:
        out, state = decide(change, pb, state, now_ms=ERASED_AT, suppressed=False)
        records += out
    assert records == []
    # The same changes with another cause do fire every action: the triggers are right.
    for change in erasure_sequence(customer, "At Risk", ["cart_abandoner", "high_spender"])[:-1]:
        fired = decide({**change, "cause": {"kind": "time"}}, pb, None, now_ms=ERASED_AT, suppressed=False)[0]
        assert [r["status"] for r in fired] == ["scheduled"]


def test_the_erasure_record_gives_one_notice_valid_against_its_schema() -> None:
    pb = load_playbook(None)
    record = erasure_record("cust-42")
    [notice], state = decide(record, pb, PolicyState({"email": (T,)}, {"x": (T,)}, ("a" * 32,)), now_ms=ERASED_AT, suppressed=True)
    assert state == PolicyState()
    assert notice == {
        "kind": "erasure", "action_id": action_id(record["change_id"], pb.name, "erasure"), "customer_id": "cust-42",
        "status": "erased", "playbook": pb.name, "playbook_version": pb.version, "change_id": record["change_id"],
        "cause": ERASURE_CAUSE, "at": rfc3339_ms(ERASED_AT),
    }
    emitted = {**notice, "emitted_at": rfc3339_ms(ERASED_AT + 5)}
    assert list(validator("playbook_erasure_notice").iter_errors(emitted)) == []
    # Not an action record: consumers tell them apart by kind (the sender does).
    assert list(validator("playbook_action").iter_errors(emitted)) != []
    # A redelivered erasure record gives the same notice (consumers dedupe on action_id).
    assert decide(record, pb, None, now_ms=ERASED_AT + DAY_MS, suppressed=False)[0] == [notice]


def test_after_an_erasure_the_customer_starts_again_with_no_cap_and_no_cooldown() -> None:
    pb = make_playbook([email_action("winback", cooldown_days=7)], frequency_caps={"email": {"max": 1, "per_hours": 72}})
    [customer] = customers_outside_holdout(pb, 1)
    [first], state = decide(segment_change(customer=customer, at=T), pb, None, now_ms=T, suppressed=False)
    assert first["status"] == "scheduled"
    again = segment_change(customer=customer, at=ERASED_AT + HOUR_MS)
    # Without the erasure the cooldown holds the same action back ...
    [held], _ = decide(again, pb, PolicyState.from_bytes(state.to_bytes()), now_ms=ms(again["at"]), suppressed=False)
    assert held["skip_reason"] == "cooldown"
    # ... with it, the customer is new: the state the erasure leaves is empty.
    for change in erasure_sequence(customer, "At Risk", []):
        _, state = decide(change, pb, state, now_ms=ERASED_AT, suppressed=False)
    [acted], _ = decide(again, pb, state, now_ms=ms(again["at"]), suppressed=False)
    assert acted["status"] == "scheduled" and acted["skip_reason"] is None


def test_a_kind_this_version_does_not_know_raises_unknown_kind() -> None:
    change = {**tag_change(), "kind": "merge"}
    with pytest.raises(UnknownKind, match="'merge'"):
        decide(change, load_playbook(None), None, now_ms=T, suppressed=False)
    assert issubclass(UnknownKind, ValueError)


@pytest.mark.parametrize("broken", [
    {"cause": {"kind": "erasure"}},  # no request id
    {"cause": {"kind": "time"}},
    {"customer_id": ""},
    {"at": "yesterday"},
])
def test_an_unusable_erasure_record_is_a_value_error(broken: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not an erasure record"):
        erasure_notice({**erasure_record(), **broken}, load_playbook(None))
