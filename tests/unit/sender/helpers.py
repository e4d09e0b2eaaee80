"""Action and profile records for the sender's tests, valid against the schemas."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

_counter = itertools.count()


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def action_id(seed: str) -> str:
    return "act-" + hashlib.sha256(seed.encode()).hexdigest()[:32]


def action_record(*, customer_id: str = "cust-1", template: str | None = "at_risk_we_miss_you", channel: str = "email",
                  status: str = "scheduled", holdout: bool = False, not_before: datetime | None = None,
                  expires_at: datetime | None = None, trigger_at: datetime | None = None, recheck: list[str] | None = None,
                  kind: str = "segment", to: str = "At Risk", tag: str = "cart_abandoner", entered: bool = True,
                  offer: dict[str, Any] | None | str = "default", params: dict[str, Any] | None = None, seed: str | None = None) -> dict[str, Any]:
    now = datetime.now(UTC)
    trigger_at = trigger_at or now - timedelta(minutes=5)
    seed = seed or f"action-{next(_counter)}-{now.timestamp()}"
    trigger: dict[str, Any] = {
        "change_id": hashlib.sha256(("change" + seed).encode()).hexdigest()[:32], "kind": kind, "at": iso(trigger_at),
        "cause": {"kind": "time"}, "rules_version": "r1-5d41402abc4b",
    }
    if kind == "segment":
        trigger.update({"from": "Loyal Customers", "to": to})
    else:
        trigger.update({"tag": tag, "entered": entered})
    return {
        "action_id": action_id(seed), "customer_id": customer_id, "playbook": "default", "playbook_version": "p1-0196a7e3a4ba",
        "action": template or "some_action", "channel": channel, "template": template,
        "offer": offer if offer != "default" else ({"type": "percent_off", "value": 20} if template else None),
        "params": params or {}, "recheck": recheck if recheck is not None else ["ordered_since_trigger", "left_trigger_segment"],
        "trigger": trigger, "status": status, "skip_reason": None if status == "scheduled" else "frequency_cap",
        "holdout": holdout, "timezone": "Europe/Berlin", "not_before": iso(not_before or now - timedelta(minutes=1)),
        "expires_at": iso(expires_at or now + timedelta(days=3)), "emitted_at": iso(now),
    }


def profile_record(*, customer_id: str = "cust-1", as_of: datetime, segment: str | None = "At Risk",
                   last_order_at: datetime | None = None, tags: list[str] | None = None) -> dict[str, Any]:
    ordered = last_order_at is not None
    return {
        "customer_id": customer_id, "as_of": iso(as_of), "recency_days": 100 if ordered else None,
        "frequency": 4 if ordered else None, "monetary": 250.0 if ordered else None, "orders_lifetime": 4 if ordered else None,
        "first_order_at": iso(last_order_at - timedelta(days=300)) if ordered else None,
        "last_order_at": iso(last_order_at) if ordered else None,
        "r": 2 if ordered else None, "f": 3 if ordered else None, "m": 3 if ordered else None,
        "segment": segment if ordered else None, "tags": sorted(tags or []), "rules_version": "r1-5d41402abc4b",
    }


def encoded(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)
