"""Spec §3 metrics at ``now``, computed from the compact state.

Why exact integer money: ``monetary`` is a sum of integer micro-units, rounded half-up to
cents once at the end, so the stream, the batch command and an independent checker can
never disagree by a rounding cent. M thresholds compare the rounded cents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stream.rules import Rules

from .state import CustomerState
from .timeutil import day_of, rfc3339_ms

MICROS_PER_CENT = 10_000


def micros_to_cents(micros: int) -> int:
    """Round half-up (amounts are never negative) from micro-units to cents."""
    return (micros + MICROS_PER_CENT // 2) // MICROS_PER_CENT


@dataclass(frozen=True, slots=True)
class Metrics:
    recency_days: int
    frequency: int
    monetary_cents: int
    discounted: int  # orders in the window with a discount (coupon_lover)
    orders_lifetime: int
    first_order_at: int
    last_order_at: int

    @property
    def monetary(self) -> float:
        return self.monetary_cents / 100

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "recency_days": self.recency_days,
            "frequency": self.frequency,
            "monetary": self.monetary,
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
    zone = rules.zone
    today = day_of(now, zone)
    oldest_counted_day = today - rules.window_days  # counted in window iff day > this
    lifetime = state.folded_count
    first = state.folded_first
    last = state.folded_last
    frequency = 0
    micros = 0
    discounted = 0
    for rec in state.orders.values():
        if rec.at is None or rec.cancelled:
            continue
        lifetime += 1
        if first is None or rec.at < first:
            first = rec.at
        if last is None or rec.at > last:
            last = rec.at
        if day_of(rec.at, zone) > oldest_counted_day:
            frequency += 1
            micros += rec.value
            if rec.discounted:
                discounted += 1
    if lifetime == 0 or first is None or last is None:
        return None
    return Metrics(
        recency_days=today - day_of(last, zone),
        frequency=frequency,
        monetary_cents=micros_to_cents(micros),
        discounted=discounted,
        orders_lifetime=lifetime,
        first_order_at=first,
        last_order_at=last,
    )
