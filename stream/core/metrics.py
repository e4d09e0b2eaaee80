"""Spec §3 metrics at ``now``, computed from the compact state.

Why exact integer money: ``monetary`` is a sum of integer micro-units, rounded half-up to
cents once at the end, so the stream, the batch command and an independent checker can
never disagree by a rounding cent. M thresholds compare the rounded cents.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, NamedTuple

from stream.rules import Rules

from .params import RuleParams, params_for
from .state import CustomerState
from .summary import RecordSummary, summary_of
from .timeutil import rfc3339_ms

MICROS_PER_CENT = 10_000


def micros_to_cents(micros: int) -> int:
    """Round half-up (amounts are never negative) from micro-units to cents."""
    return (micros + MICROS_PER_CENT // 2) // MICROS_PER_CENT


class Metrics(NamedTuple):
    """Immutable. A NamedTuple rather than a frozen dataclass: one is built per evaluation
    (hundreds of thousands in a replay) and frozen dataclasses are several times slower
    to construct."""

    recency_days: int
    frequency: int
    monetary_cents: int
    discounted: int  # orders in the window with a discount (coupon_lover)
    orders_lifetime: int
    first_order_at: int
    last_order_at: int
    last_order_day: int  # business day of last_order_at (recency, engaged_non_buyer, timers)
    first_order_day: int  # business day of first_order_at (overdue's mean gap)

    @property
    def monetary(self) -> float:
        return self.monetary_cents / 100

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "recency_days": self.recency_days,
            "frequency": self.frequency,
            "monetary": self.monetary_cents / 100,
            "orders_lifetime": self.orders_lifetime,
            "first_order_at": rfc3339_ms(self.first_order_at),
            "last_order_at": rfc3339_ms(self.last_order_at),
        }


NULL_METRICS: dict[str, Any] = {
    "recency_days": None,
    "frequency": None,
    "monetary": None,
    "orders_lifetime": None,
    "first_order_at": None,
    "last_order_at": None,
}


def compute_metrics(state: CustomerState, now: int, rules: Rules) -> Metrics | None:
    """Metrics at ``now`` (exact for ``now >= state.evaluated_at``); None without a counted order."""
    return metrics_at(state, now, params_for(rules))


def metrics_at(state: CustomerState, now: int, p: RuleParams) -> Metrics | None:
    """``compute_metrics`` with the rules' numbers already derived (the engine's hot path).

    The per-order work (business days, values after refunds, sorting) is in the state's
    ``RecordSummary``; at ``now`` only the window boundary is looked up: the orders with
    ``day > day(now) - window_days`` are the sorted days from ``bisect_right`` on."""
    return metrics_on_day(summary_of(state, p), p.day_of(now), p)


def metrics_on_day(s: RecordSummary, today: int, p: RuleParams) -> Metrics | None:
    """The metrics on business day ``today`` (they depend on ``now`` only through it)."""
    first = s.first_order_at
    last = s.last_order_at
    if first is None or last is None:
        return None
    in_window_from = bisect_right(s.counted_days, today - p.window_days)
    return Metrics(  # positional (in field order): measurably cheaper than keywords here
        today - s.last_order_day,  # recency_days
        len(s.counted_days) - in_window_from,  # frequency
        (s.value_from[in_window_from] + MICROS_PER_CENT // 2) // MICROS_PER_CENT,  # monetary_cents
        s.discounted_from[in_window_from],  # discounted
        s.orders_lifetime,
        first,
        last,
        s.last_order_day,
        s.first_order_day,
    )
