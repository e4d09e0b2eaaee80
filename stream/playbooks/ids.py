"""Action ids: the idempotency key of every record the playbook engine emits. Pure."""

from __future__ import annotations

import hashlib


def action_id(change_id: str, playbook_name: str, action_name: str) -> str:
    """``act-`` + 32 hex of sha256(``"<change_id>|<playbook>|<action>"``): the same change
    and action always give the same id, so downstream can use it as an idempotency key."""
    digest = hashlib.sha256(f"{change_id}|{playbook_name}|{action_name}".encode()).hexdigest()
    return f"act-{digest[:32]}"
