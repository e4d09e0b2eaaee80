"""A customer's erasure (GDPR Art. 17) as the playbook engine sees it. Pure.

The worker erases a customer with, on ``segment-changes``, changes caused by the
erasure (cause ``erasure``: the segment to null, every tag left), then one record of
kind ``erasure``. The engine answers:

- a change caused by an erasure triggers nothing, and yields **no record at all**
  (``decide`` returns none): an action record carries the customer id and the trigger's
  segments and tags, and a "skipped" one would put exactly what the customer asked to
  have deleted back on ``playbook-actions``, after the request, for the topic's whole
  retention. The notice below tells every consumer more, with less;
- the ``erasure`` record makes the shell delete the customer's policy state (caps,
  cooldowns, decided change ids) with a tombstone on the table's changelog, and publish
  one **erasure notice** (:func:`erasure_notice`) on ``playbook-actions`` keyed by the
  customer: on the partition of the customer's earlier actions, after them, so a
  consumer reading that partition in order has seen every earlier action when the
  notice arrives, and can cancel the ones it still holds (the sender: emails scheduled
  for later) and forget the customer.

The notice (schema ``schemas/playbook_erasure_notice.schema.json``) keeps the fields a
consumer of action records already reads (``action_id``, ``customer_id``, ``status``,
``playbook``), so one that acts on ``status: scheduled`` only (the sender before it
knew erasures) ignores it rather than acting on it or dead-lettering it as malformed.
"""

from __future__ import annotations

from typing import Any

from stream.core.timeutil import parse_rfc3339_ms, rfc3339_ms

from .ids import action_id
from .model import Playbook

ERASURE = "erasure"  # the record kind, the cause kind, and the notice's kind
NOTICE_STATUS = "erased"
# The notice's action_id is that of a pseudo-action of this name: deterministic (a
# re-emission has the same id) and never the id of a real action, since a change of
# kind erasure triggers none.
NOTICE_ACTION = "erasure"


def caused_by_erasure(change: dict[str, Any]) -> bool:
    """Is ``change`` (wire form) one the worker emitted because the customer was erased?"""
    cause = change.get("cause") if isinstance(change, dict) else None
    return isinstance(cause, dict) and cause.get("kind") == ERASURE


def is_erasure(change: dict[str, Any]) -> bool:
    """Is ``change`` the record of kind ``erasure`` (the customer is gone)?"""
    return isinstance(change, dict) and change.get("kind") == ERASURE


def erasure_notice(change: dict[str, Any], playbook: Playbook) -> dict[str, Any]:
    """The notice (wire form, without ``emitted_at``) for the ``erasure`` record ``change``.
    Raises ``ValueError`` when ``change`` is not a usable erasure record."""
    try:
        customer_id = change["customer_id"]
        change_id = change["change_id"]
        at_ms = parse_rfc3339_ms(change["at"])
        cause = change["cause"]
        if not (isinstance(customer_id, str) and customer_id and isinstance(change_id, str) and change_id):
            raise ValueError("customer_id and change_id must be non-empty strings")
        if not is_erasure(change) or not caused_by_erasure(change) or not isinstance(cause.get("event_id"), str):
            raise ValueError("kind and cause must be erasure, with the request's event_id")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not an erasure record: {type(exc).__name__}: {exc}") from None
    return {
        "kind": ERASURE,
        "action_id": action_id(change_id, playbook.name, NOTICE_ACTION),
        "customer_id": customer_id,
        "status": NOTICE_STATUS,
        "playbook": playbook.name,
        "playbook_version": playbook.version,
        "change_id": change_id,
        "cause": {"kind": ERASURE, "event_id": cause["event_id"]},
        "at": rfc3339_ms(at_ms),
    }
