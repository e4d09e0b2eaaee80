"""When an action may go out, and whether it still should. Pure.

Two questions, asked at send time rather than when the action arrives, because both
answers change with time:

- *timing*: an action is held until ``not_before`` (quiet hours: held, never dropped)
  and dropped as expired from ``expires_at`` on;
- *re-check*: the customer may have moved on since the trigger (ordered, left the
  segment, lost the tag). The latest ``customer-profiles`` record answers that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from stream.sender.action import Action, parse_instant

# Sender-side skip reasons (segments_actions_skipped_total{reason}).
SKIP_EXPIRED = "expired"
SKIP_NO_CONTACT = "no_contact"
SKIP_ORDERED = "ordered_since_trigger"
SKIP_LEFT_SEGMENT = "left_trigger_segment"
SKIP_LEFT_TAG = "left_trigger_tag"
SKIP_REASONS = (SKIP_EXPIRED, SKIP_NO_CONTACT, SKIP_ORDERED, SKIP_LEFT_SEGMENT, SKIP_LEFT_TAG)


@dataclass(frozen=True)
class Profile:
    customer_id: str
    as_of: datetime
    segment: str | None
    tags: frozenset[str]
    last_order_at: datetime | None
    record: dict[str, Any]


def decode_profile(raw: bytes | None) -> Profile | None:
    """A ``customer-profiles`` record, or None when it lacks what the re-checks need."""
    if raw is None:
        return None
    try:
        record = orjson.loads(raw)
        if not isinstance(record, dict) or not isinstance(record.get("customer_id"), str):
            return None
        last = record.get("last_order_at")
        tags = record.get("tags") or []
        segment = record.get("segment")
        if not isinstance(tags, list) or (segment is not None and not isinstance(segment, str)):
            return None
        return Profile(
            customer_id=record["customer_id"],
            as_of=parse_instant(record.get("as_of")),
            segment=segment,
            tags=frozenset(tag for tag in tags if isinstance(tag, str)),
            last_order_at=None if last is None else parse_instant(last),
            record=record,
        )
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None


@dataclass(frozen=True)
class Due:
    pass


@dataclass(frozen=True)
class Hold:
    until: datetime


@dataclass(frozen=True)
class Expired:
    pass


def timing(action: Action, now: datetime) -> Due | Hold | Expired:
    """Due now, held until an instant, or expired. ``expires_at`` wins over ``not_before``."""
    if now >= action.expires_at:
        return Expired()
    if now < action.not_before:
        # Quiet hours may end after the action expires: wake up at expiry to record it.
        return Hold(min(action.not_before, action.expires_at))
    return Due()


def recheck(action: Action, profile: Profile | None) -> str | None:
    """The skip reason if the customer no longer qualifies, else None.

    Without a profile nothing is known to have changed, so the action goes out. Segment
    and tag checks only trust a profile at least as new as the trigger: an older one
    describes the customer before the change and would always disagree with it.
    """
    if profile is None:
        return None
    trigger = action.trigger
    if "ordered_since_trigger" in action.recheck:
        if profile.last_order_at is not None and profile.last_order_at > trigger.at:
            return SKIP_ORDERED
    current = profile.as_of >= trigger.at
    if "left_trigger_segment" in action.recheck and current and trigger.kind == "segment":
        if profile.segment != trigger.to:
            return SKIP_LEFT_SEGMENT
    if "left_trigger_tag" in action.recheck and current and trigger.kind == "tag" and trigger.tag:
        # The customer must still be where the trigger put them: holding the tag after
        # entering it, not holding it after leaving it.
        wanted = trigger.entered is not False
        if (trigger.tag in profile.tags) != wanted:
            return SKIP_LEFT_TAG
    return None
