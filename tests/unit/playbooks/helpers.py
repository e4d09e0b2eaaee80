"""Builders for playbook tests: playbooks from plain dicts, change records as on the topic."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

import yaml

from stream.core.timeutil import parse_rfc3339_ms, rfc3339_ms
from stream.playbooks import Playbook, parse_playbook
from stream.playbooks.policies import holdout_hash

_ids = itertools.count()
RULES_VERSION = "r1-000000000001"


def email_action(name: str = "winback", trigger: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    action: dict[str, Any] = {
        "name": name,
        "trigger": trigger or {"enter_segment": "At Risk"},
        "channel": "email",
        "template": name,
        "expires_after_hours": 72,
    }
    action.update(fields)
    return action


def make_playbook(
    actions: list[dict[str, Any]] | None = None,
    *,
    name: str = "test",
    share: float = 0,
    **policies: Any,
) -> Playbook:
    """A playbook with no holdout, the email cap of the model's defaults and no quiet
    hours unless given: each test turns on the policy it is about."""
    doc: dict[str, Any] = {
        "name": name,
        "holdout": {"share": share},
        "policies": {"timezone": "UTC", "quiet_hours": None, **policies},
        "actions": actions or [email_action()],
    }
    return parse_playbook(yaml.safe_dump(doc, sort_keys=False), "test.yaml")


def segment_change(
    to: str | None = "At Risk",
    frm: str | None = "Loyal Customers",
    *,
    at: str | int = "2024-03-01T12:00:00Z",
    customer: str = "cust-1",
    rules_version: str = RULES_VERSION,
    **extra: Any,
) -> dict[str, Any]:
    return _change({"kind": "segment", "from": frm, "to": to}, at, customer, rules_version, extra)


def tag_change(
    tag: str = "cart_abandoner",
    entered: bool = True,
    *,
    at: str | int = "2024-03-01T12:00:00Z",
    customer: str = "cust-1",
    rules_version: str = RULES_VERSION,
    **extra: Any,
) -> dict[str, Any]:
    return _change({"kind": "tag", "tag": tag, "entered": entered}, at, customer, rules_version, extra)


def _change(
    detail: dict[str, Any], at: str | int, customer: str, rules_version: str, extra: dict[str, Any]
) -> dict[str, Any]:
    change_id = hashlib.sha256(f"change-{next(_ids)}".encode()).hexdigest()[:32]
    at_text = rfc3339_ms(at) if isinstance(at, int) else at
    change = {
        "change_id": change_id,
        "customer_id": customer,
        **detail,
        "at": at_text,
        "cause": {"kind": "time"},
        "segment": detail.get("to"),
        "tags": [],
        "scores": {"r": None, "f": None, "m": None, "fm": None},
        "metrics": {
            "recency_days": None, "frequency": None, "monetary": None,
            "orders_lifetime": None, "first_order_at": None, "last_order_at": None,
        },
        "rules_version": rules_version,
        "emitted_at": at_text,
    }
    change.update(extra)
    return change


def ms(text: str) -> int:
    return parse_rfc3339_ms(text)


def customers_outside_holdout(playbook: Playbook, count: int) -> list[str]:
    out = []
    for i in itertools.count():
        cid = f"cust-{i}"
        if holdout_hash(playbook.name, cid) >= playbook.holdout_threshold:
            out.append(cid)
            if len(out) == count:
                return out
    raise AssertionError("unreachable")


def customer_in_holdout(playbook: Playbook) -> str:
    for i in itertools.count():
        cid = f"cust-{i}"
        if holdout_hash(playbook.name, cid) < playbook.holdout_threshold:
            return cid
    raise AssertionError("unreachable")
