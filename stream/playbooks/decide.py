"""The playbook decision: one segment-change record in, action records out.

Pure and deterministic: the result depends only on the change, the playbook, the
customer's policy state and ``now_ms`` (used for nothing but the backfill horizon), so a
replay of the same changes with the same clock gives the same records and the same
state as the live run. The shell (``segments playbooks``) supplies the state from its
table, looks the customer up in the suppression list, publishes the records keyed by
customer with ``emitted_at`` added, and stores the returned state.

Every action the change triggers yields one record, scheduled or skipped with a reason,
so a capped or suppressed action is visible downstream, never silently dropped. Reasons
are checked in this order, the first that applies wins:

1. ``backfill``: the change is older than ``policies.backfill.horizon_hours`` before
   ``now_ms``, or it is flagged ``backfill: true`` (a replay);
2. ``rules_changed``: the change was caused by a change of the rules file (cause
   ``rules``: segments moved because the rules did, not the customer);
3. ``suppressed``: the customer is on the suppression list (marketing actions only);
4. ``cooldown``: the same action was scheduled less than ``cooldown_days`` away;
5. ``frequency_cap``: the channel's cap would be exceeded (marketing actions only).

1 and 2 are lifted by ``policies.backfill.act: true``. Quiet hours never skip: they move
``not_before`` to the end of the window, before caps and cooldowns are checked.

A change caused by an erasure (cause ``erasure``) yields no record at all, whatever
``backfill.act`` says, and the record of kind ``erasure`` yields one erasure notice and
an empty state, which the shell deletes rather than stores (``stream/playbooks/erasure.py``
says why). A kind this engine does not know raises ``UnknownKind``.

Holdout customers (a stable hash of playbook name and customer id below the share) get
the same records with ``holdout: true``; the sender never sends those, and they do not
use up caps or cooldowns. Only scheduled, non-holdout actions enter the state.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from stream.core.timeutil import parse_rfc3339_ms, rfc3339_ms

from .erasure import caused_by_erasure, erasure_notice, is_erasure
from .ids import action_id
from .model import Action, Playbook
from .policies import exceeds_cap, in_cooldown, in_holdout, quiet_release
from .policy_state import PolicyState

__all__ = ["CHANGE_KINDS", "UnknownKind", "action_id", "decide"]

# The kinds of segment-change records that can trigger actions.
CHANGE_KINDS = ("segment", "tag")


class UnknownKind(ValueError):
    """A record of a kind this engine does not know (a later worker's): not malformed,
    just not for this version."""


@lru_cache(maxsize=1024)
def _zone(key: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _trigger(change: dict[str, Any], at_ms: int) -> dict[str, Any]:
    out: dict[str, Any] = {"change_id": change["change_id"], "kind": change["kind"]}
    if change["kind"] == "segment":
        out["from"] = change["from"]
        out["to"] = change["to"]
    else:
        out["tag"] = change["tag"]
        out["entered"] = change["entered"]
    out["at"] = rfc3339_ms(at_ms)
    out["cause"] = dict(change["cause"])
    out["rules_version"] = change["rules_version"]
    return out


def _json_copy(value: Any) -> Any:
    # The playbook is shared by every decision: hand out copies of its dicts and lists.
    if isinstance(value, dict):
        return {k: _json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_copy(v) for v in value]
    return value


def decide(
    change: dict[str, Any],
    playbook: Playbook,
    policy_state: PolicyState | None,
    *,
    now_ms: int,
    suppressed: bool,
) -> tuple[list[dict[str, Any]], PolicyState]:
    """Action records (wire form, without ``emitted_at``) for ``change``, in playbook
    order, and the customer's new policy state.

    ``change`` is a segment-change record as on the topic (``schemas/
    segment_change.schema.json``), optionally with ``timezone`` (IANA; an unknown or
    missing zone falls back to ``policies.timezone``). ``policy_state`` is the state
    returned for the customer's previous change, or None for a new customer.
    Raises ``ValueError`` when ``change`` is not a segment-change record, ``UnknownKind``
    (a ValueError) when its kind is none this engine knows.
    """
    if is_erasure(change):
        return [erasure_notice(change, playbook)], PolicyState()
    if isinstance(change, dict) and isinstance(change.get("kind"), str) and change["kind"] not in CHANGE_KINDS:
        raise UnknownKind(f"a segment-change record of unknown kind {change['kind'][:40]!r}")
    try:
        customer_id: str = change["customer_id"]
        at_ms = parse_rfc3339_ms(change["at"])
        matched = playbook.actions_for(change)
        trigger = _trigger(change, at_ms)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not a segment-change record: {type(exc).__name__}: {exc}") from None

    if policy_state is not None and change["change_id"] in policy_state.decided:
        return [], policy_state  # a redelivery: its actions were emitted the first time
    if caused_by_erasure(change):
        # Never an action, nor a skipped record naming the customer (erasure.py).
        return [], (policy_state or PolicyState()).with_decided(trigger["change_id"])
    policies = playbook.policies
    windows = playbook.cap_windows
    prior = (policy_state or PolicyState()).pruned(at_ms, windows, playbook.cooldown_windows)

    change_skip: str | None = None
    if not policies.backfill.act:
        if change.get("backfill") is True or at_ms < now_ms - policies.backfill.horizon_ms:
            change_skip = "backfill"
        elif change["cause"].get("kind") == "rules":
            change_skip = "rules_changed"

    zone_key = change.get("timezone")
    zone = _zone(zone_key) if isinstance(zone_key, str) else None
    if zone is None:
        zone = playbook.zone
    holdout = in_holdout(playbook.name, customer_id, playbook.holdout_threshold)

    sends = {ch: list(times) for ch, times in prior.sends.items()}
    runs = {name: list(times) for name, times in prior.cooldowns.items()}
    records: list[dict[str, Any]] = []
    for action in matched:
        not_before = _not_before(action, at_ms, zone, playbook)
        reason = change_skip or _policy_skip(action, not_before, suppressed, sends, runs, playbook)
        if reason is None and not holdout:
            if action.marketing and action.channel in windows:
                sends.setdefault(action.channel, []).append(not_before)
                sends[action.channel].sort()
            if action.cooldown_ms is not None:
                runs.setdefault(action.name, []).append(not_before)
                runs[action.name].sort()
        records.append(
            {
                "action_id": action_id(trigger["change_id"], playbook.name, action.name),
                "customer_id": customer_id,
                "playbook": playbook.name,
                "playbook_version": playbook.version,
                "action": action.name,
                "channel": action.channel,
                "template": action.template,
                "offer": None if action.offer is None else {"type": action.offer.type, "value": action.offer.value},
                "params": _json_copy(action.params),
                "recheck": list(action.recheck),
                "trigger": _json_copy(trigger),
                "status": "scheduled" if reason is None else "skipped",
                "skip_reason": reason,
                "holdout": holdout,
                "timezone": zone.key,
                "not_before": rfc3339_ms(not_before),
                "expires_at": rfc3339_ms(not_before + action.expires_after_ms),
            }
        )
    state = PolicyState(
        {ch: tuple(times) for ch, times in sends.items() if times},
        {name: tuple(times) for name, times in runs.items() if times},
        prior.decided,
    ).with_decided(trigger["change_id"])
    return records, state


def _not_before(action: Action, at_ms: int, zone: ZoneInfo, playbook: Playbook) -> int:
    due = at_ms + action.delay_ms
    quiet = playbook.policies.quiet_hours
    if quiet is not None and action.channel in quiet.channels:
        due = quiet_release(due, zone, quiet.start_minute, quiet.end_minute)
    return due


def _policy_skip(
    action: Action,
    not_before: int,
    suppressed: bool,
    sends: dict[str, list[int]],
    runs: dict[str, list[int]],
    playbook: Playbook,
) -> str | None:
    if suppressed and action.marketing:
        return "suppressed"
    if action.cooldown_ms is not None and in_cooldown(runs.get(action.name, ()), not_before, action.cooldown_ms):
        return "cooldown"
    cap = playbook.policies.frequency_caps.get(action.channel)  # type: ignore[call-overload]
    if action.marketing and cap is not None:
        if exceeds_cap(sends.get(action.channel, ()), not_before, cap.max, cap.window_ms):
            return "frequency_cap"
    return None
