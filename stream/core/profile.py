"""Spec §8: the profile snapshot of one customer at ``now``.

Pure (the state is not touched), so the worker can answer "what is this customer right
now" at the partition clock without moving the customer's timeline. Exact for
``now >= state.evaluated_at`` (older instants may already be folded out of the state).
"""

from __future__ import annotations

from typing import Any

from stream.rules import Rules

from .evaluation import evaluate_at
from .metrics import NULL_METRICS
from .params import params_for
from .state import CustomerState
from .timeutil import rfc3339_ms


def profile(state: CustomerState, now: int, rules: Rules) -> dict[str, Any]:
    """``customer_id, as_of, <metrics>, r, f, m, segment, tags, rules_version``."""
    p = params_for(rules)
    known = state.evaluation  # the engine's, at evaluated_at, while the records last
    if known is not None and known[0] is p and known[1].now == now:
        ev = known[1]
    else:
        ev = evaluate_at(state, now, p)
    out: dict[str, Any] = {"customer_id": state.customer_id, "as_of": rfc3339_ms(now)}
    out.update(ev.metrics.to_json_dict() if ev.metrics is not None else NULL_METRICS)
    if ev.scores is not None:
        out.update(r=ev.scores.r, f=ev.scores.f, m=ev.scores.m)
    else:
        out.update(r=None, f=None, m=None)
    out["segment"] = ev.segment
    out["tags"] = list(ev.tags)
    out["rules_version"] = p.version
    return out
