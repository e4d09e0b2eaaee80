"""decide()'s records, with the shell's emitted_at, satisfy schemas/playbook_action.schema.json,
and the schema rejects what the contract forbids."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stream.core.timeutil import rfc3339_ms
from stream.events import load_schema, validator
from stream.playbooks import CHANNELS, RECHECKS, SKIP_REASONS, decide, load_playbook
from stream.rules import SEGMENT_NAMES

from .helpers import customer_in_holdout, ms, segment_change, tag_change

T = ms("2024-03-01T22:30:00Z")


def errors(record: dict[str, Any]) -> list[str]:
    return [e.message for e in validator("playbook_action").iter_errors(record)]


def emitted(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "emitted_at": rfc3339_ms(T + 5)}


def all_default_records() -> list[dict[str, Any]]:
    """Every action of the default playbook, scheduled, skipped for each reason, holdout."""
    pb = load_playbook(None)
    changes = [segment_change(s, "Champions" if s != "Champions" else None, at=T, timezone="Europe/Berlin") for s in SEGMENT_NAMES]
    for action in pb.actions:
        if action.trigger.kind in ("enter_tag", "leave_tag"):
            tag = action.trigger.enter_tag or action.trigger.leave_tag
            changes.append(tag_change(tag, action.trigger.kind == "enter_tag", at=T))
    records: list[dict[str, Any]] = []
    state = None
    for change in changes:  # one customer: caps and cooldowns kick in
        out, state = decide(change, pb, state, now_ms=T, suppressed=False)
        records += out
    records += decide(changes[0], pb, None, now_ms=T, suppressed=True)[0]
    records += decide(changes[0], pb, None, now_ms=T + 365 * 86_400_000, suppressed=False)[0]
    records += decide({**changes[0], "cause": {"kind": "rules"}}, pb, None, now_ms=T, suppressed=False)[0]
    held = customer_in_holdout(pb)
    records += decide({**changes[0], "customer_id": held}, pb, None, now_ms=T, suppressed=False)[0]
    return records


def test_every_kind_of_record_is_valid() -> None:
    records = all_default_records()
    seen_reasons = {r["skip_reason"] for r in records}
    assert seen_reasons == {None, *SKIP_REASONS}
    assert {r["channel"] for r in records} == set(CHANNELS)
    assert {True, False} == {r["holdout"] for r in records}
    for record in records:
        assert errors(emitted(record)) == [], record["action"]


def test_schema_enums_are_the_codes() -> None:
    props = load_schema("playbook_action")["properties"]
    assert props["channel"]["enum"] == list(CHANNELS)
    assert props["skip_reason"]["enum"] == [*SKIP_REASONS, None]
    assert props["recheck"]["items"]["enum"] == list(RECHECKS)
    assert set(load_schema("playbook_action")["required"]) == set(all_default_records()[0]) | {"emitted_at"}


@pytest.fixture(scope="module")
def good() -> dict[str, Any]:
    return emitted(all_default_records()[0])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r.pop("emitted_at"),
        lambda r: r.update(extra=1),
        lambda r: r.update(action_id="act-XYZ"),
        lambda r: r.update(status="sent"),
        lambda r: r.update(skip_reason="bored"),
        lambda r: r.update(status="skipped", skip_reason=None),
        lambda r: r.update(status="scheduled", skip_reason="cooldown"),
        lambda r: r.update(channel="fax"),
        lambda r: r.update(not_before="tomorrow"),
        lambda r: r.update(offer={"type": "percent_off"}),
        lambda r: r.update(recheck=["ordered_since_trigger", "ordered_since_trigger"]),
        lambda r: r["trigger"].update(tag="prospect"),
        lambda r: r["trigger"].pop("from"),
        lambda r: r["trigger"].update(cause={"kind": "magic"}),
        lambda r: r["trigger"].update(to="VIP"),
    ],
)
def test_schema_rejects(good: dict[str, Any], mutate) -> None:
    record = copy.deepcopy(good)
    mutate(record)
    assert errors(record)
