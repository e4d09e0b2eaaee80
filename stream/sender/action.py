"""Decoding one ``playbook-actions`` record, and whether the sender handles it. Pure.

The playbook engine writes the records (schema ``schemas/playbook_action.schema.json``
once it exists). The sender checks the fields it relies on itself, so that a record it
cannot act on safely (no id, unparseable instants) is ignored and counted instead of
crashing the loop or being sent wrongly; when the schema file is present the record
must also satisfy it.

The same topic carries the engine's erasure notices (``kind: erasure``, schema
``schemas/playbook_erasure_notice.schema.json``): :func:`decode_record` tells them
apart; :func:`decode_action` alone reads a notice as an action of status ``erased``,
ignored, as the sender did before it knew erasures.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

ACTION_ID = re.compile(r"act-[0-9a-f]{32}")
RECHECKS = frozenset({"ordered_since_trigger", "left_trigger_segment", "left_trigger_tag"})
# Why each handled-or-not outcome has a name: the counters and the DLQ say which.
IGNORE_MALFORMED = "malformed"
IGNORE_CHANNEL = "channel"
IGNORE_STATUS = "status"
IGNORE_HOLDOUT = "holdout"
IGNORE_REASONS = (IGNORE_MALFORMED, IGNORE_CHANNEL, IGNORE_STATUS, IGNORE_HOLDOUT)
ERASURE = "erasure"  # the kind of an erasure notice


@dataclass(frozen=True)
class Trigger:
    change_id: str
    kind: str  # "segment" | "tag"
    at: datetime
    to: str | None = None
    from_: str | None = None
    tag: str | None = None
    entered: bool | None = None


@dataclass(frozen=True)
class Action:
    action_id: str
    customer_id: str
    channel: str
    status: str
    holdout: bool
    template: str | None
    not_before: datetime
    expires_at: datetime
    trigger: Trigger
    recheck: tuple[str, ...]
    # The whole record as received: rendered into templates, kept in the ledger, sent
    # back verbatim with a dead letter.
    record: dict[str, Any]


@dataclass(frozen=True)
class ErasureNotice:
    """The customer was erased at ``at``: their actions triggered until then are not to be
    sent, and what the ledger keeps about them goes."""

    action_id: str  # the notice's own id (a re-emission carries the same one)
    customer_id: str
    at: datetime


@dataclass(frozen=True)
class Ignored:
    reason: str  # one of IGNORE_REASONS
    detail: str
    action_id: str | None = None


def parse_instant(value: Any) -> datetime:
    """An RFC 3339 instant with an offset; ValueError otherwise (naive times are ambiguous)."""
    if not isinstance(value, str):
        raise ValueError("not a string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("no UTC offset")
    return parsed


@functools.cache
def _schema_validator(name: str = "playbook_action") -> Any:
    """The validator of schema ``name``, or None while the schema does not exist."""
    from stream.events.schemas import schema_names, validator

    try:
        return validator(name) if name in schema_names() else None
    except Exception as error:  # a broken schema file must not stop sending; say so, once
        import logging

        logging.getLogger("stream.sender").error("%s schema unusable, checking fields only: %s", name, error)
        return None


def _schema_problem(name: str, record: dict[str, Any]) -> str | None:
    schema = _schema_validator(name)
    problem = None if schema is None else next(iter(schema.iter_errors(record)), None)
    if problem is None:
        return None
    where = "/".join(str(part) for part in problem.absolute_path) or "(record)"
    return f"{where}: {problem.message[:200]}"


def _json_object(raw: bytes | None) -> dict[str, Any] | Ignored:
    try:
        record = orjson.loads(raw) if raw is not None else None
    except orjson.JSONDecodeError as error:
        return Ignored(IGNORE_MALFORMED, f"not JSON: {error}")
    if not isinstance(record, dict):
        return Ignored(IGNORE_MALFORMED, "not a JSON object")
    return record


def decode_record(raw: bytes | None) -> Action | ErasureNotice | Ignored:
    """What a ``playbook-actions`` record is to the sender: an action, an erasure notice,
    or why it is ignored. Never raises."""
    record = _json_object(raw)
    if isinstance(record, Ignored):
        return record
    if record.get("kind") == ERASURE:
        return _erasure_notice(record)
    return _action(record, schema_check=True)


def _erasure_notice(record: dict[str, Any]) -> ErasureNotice | Ignored:
    notice_id = record.get("action_id")
    notice_id = notice_id if isinstance(notice_id, str) and ACTION_ID.fullmatch(notice_id) else None
    problem = _schema_problem("playbook_erasure_notice", record)
    if problem is not None:
        return Ignored(IGNORE_MALFORMED, f"erasure notice: {problem}", notice_id)
    try:
        if notice_id is None:
            raise ValueError("action_id: not 'act-' and 32 hex digits")
        return ErasureNotice(notice_id, _text(record, "customer_id"), _instant(record, "at"))  # type: ignore[arg-type]
    except ValueError as error:
        return Ignored(IGNORE_MALFORMED, f"erasure notice: {error}", notice_id)


def decode_action(raw: bytes | None, *, schema_check: bool = True) -> Action | Ignored:
    """The action in ``raw``, or why the sender ignores it. Never raises.

    ``schema_check=False`` skips the JSON Schema (a millisecond per record) for records
    that passed it already: the ledger's, read back at send time."""
    record = _json_object(raw)
    if isinstance(record, Ignored):
        return record
    return _action(record, schema_check=schema_check)


def _action(record: dict[str, Any], *, schema_check: bool) -> Action | Ignored:
    action_id = record.get("action_id")
    if not isinstance(action_id, str) or not ACTION_ID.fullmatch(action_id):
        return Ignored(IGNORE_MALFORMED, "action_id: not 'act-' and 32 hex digits")
    # Not ours first: records for other channels, skipped or holdout need no further
    # checks from the sender (their consumers check them).
    channel, status, holdout = record.get("channel"), record.get("status"), record.get("holdout")
    if isinstance(channel, str) and channel != "email":
        return Ignored(IGNORE_CHANNEL, f"channel {channel}", action_id)
    if isinstance(status, str) and status != "scheduled":
        return Ignored(IGNORE_STATUS, f"status {status}", action_id)
    if holdout is True:
        return Ignored(IGNORE_HOLDOUT, "holdout", action_id)
    problem = _schema_problem("playbook_action", record) if schema_check else None
    if problem is not None:
        return Ignored(IGNORE_MALFORMED, problem, action_id)
    try:
        action = _fields(record, action_id)
    except (KeyError, TypeError, ValueError) as error:
        return Ignored(IGNORE_MALFORMED, str(error) or type(error).__name__, action_id)
    if action.channel != "email" or action.status != "scheduled" or action.holdout:
        return Ignored(IGNORE_MALFORMED, "channel, status or holdout of the wrong type", action_id)
    return action


def _text(record: dict[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = record.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key}: must be a non-empty string")
    return value


def _instant(record: dict[str, Any], key: str) -> datetime:
    try:
        return parse_instant(record.get(key))
    except ValueError as error:
        raise ValueError(f"{key}: not an RFC 3339 instant ({error})") from None


def _fields(record: dict[str, Any], action_id: str) -> Action:
    customer_id = _text(record, "customer_id")
    channel = _text(record, "channel")
    status = _text(record, "status")
    holdout = record.get("holdout")
    if not isinstance(holdout, bool):
        raise ValueError("holdout: must be true or false")
    trigger_record = record.get("trigger")
    if not isinstance(trigger_record, dict):
        raise ValueError("trigger: must be an object")
    kind = _text(trigger_record, "kind")
    if kind not in ("segment", "tag"):
        raise ValueError("trigger.kind: must be 'segment' or 'tag'")
    entered = trigger_record.get("entered")
    trigger = Trigger(
        change_id=str(trigger_record.get("change_id", "")),
        kind=kind,
        at=_instant(trigger_record, "at"),
        to=_text(trigger_record, "to", optional=True),
        from_=_text(trigger_record, "from", optional=True),
        tag=_text(trigger_record, "tag", optional=True),
        entered=entered if isinstance(entered, bool) else None,
    )
    recheck = record.get("recheck", [])
    if not isinstance(recheck, list) or not all(isinstance(item, str) for item in recheck):
        raise ValueError("recheck: must be a list of strings")
    unknown = sorted(set(recheck) - RECHECKS)
    if unknown:
        # An unknown re-check is a condition the sender cannot honour: refuse rather than
        # send an email the playbook wanted withheld in some case.
        raise ValueError(f"recheck: unknown condition(s) {', '.join(unknown)}")
    for key in ("params",):
        if record.get(key) is not None and not isinstance(record[key], dict):
            raise ValueError(f"{key}: must be an object")
    offer = record.get("offer")
    if offer is not None and not isinstance(offer, dict):
        raise ValueError("offer: must be an object or null")
    return Action(
        action_id=action_id,
        customer_id=customer_id,  # type: ignore[arg-type]
        channel=channel,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        holdout=holdout,
        template=_text(record, "template", optional=True),
        not_before=_instant(record, "not_before"),
        expires_at=_instant(record, "expires_at"),
        trigger=trigger,
        recheck=tuple(recheck),
        record=record,
    )
