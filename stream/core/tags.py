"""Spec §6 behavioural tags at ``now``.

Ratios (coupon share, overdue gap) use exact fractions: a customer exactly at 60 % or
exactly at ``2 * gap`` must land on the same side in every implementation.
"""

from __future__ import annotations

from fractions import Fraction

from stream.rules import Rules

from .metrics import Metrics
from .scoring import Scores
from .state import CustomerState
from .timeutil import day_of


def overdue_limit(metrics: Metrics, rules: Rules) -> Fraction:
    """``max(min_days, gap_multiplier * gap)``; recency must be strictly above it."""
    zone = rules.zone
    span = day_of(metrics.last_order_at, zone) - day_of(metrics.first_order_at, zone)
    gap = Fraction(span, metrics.orders_lifetime - 1)
    return max(Fraction(rules.tags.overdue.min_days), rules.gap_multiplier * gap)


def compute_tags(
    state: CustomerState,
    metrics: Metrics | None,
    scores: Scores | None,
    now: int,
    rules: Rules,
) -> tuple[str, ...]:
    """Sorted tag names holding at ``now``."""
    t = rules.tags
    zone = rules.zone
    today = day_of(now, zone)
    out: list[str] = []

    if metrics is not None and scores is not None:
        rec = metrics.recency_days
        life = metrics.orders_lifetime
        if life == 1 and rec >= t.one_time_buyer.min_recency_days:
            out.append("one_time_buyer")
        if life >= t.repeat_purchaser.min_orders and rec <= t.repeat_purchaser.max_recency_days:
            out.append("repeat_purchaser")
        if rec >= t.lapsed.min_recency_days:
            out.append("lapsed")
        if scores.m >= t.high_spender.min_m:
            out.append("high_spender")
        if scores.f >= t.low_spender.min_f and scores.m <= t.low_spender.max_m:
            out.append("low_spender")
        freq = metrics.frequency
        if freq >= t.coupon_lover.min_frequency and Fraction(metrics.discounted, freq) >= rules.coupon_share:
            out.append("coupon_lover")
        if (
            life >= t.overdue.min_orders
            and rec <= t.overdue.max_recency_days
            and rec > overdue_limit(metrics, rules)
        ):
            out.append("overdue")

    cart_at = state.cart_at
    if (
        cart_at is not None
        and state.cart_open
        and (metrics is None or metrics.last_order_at < cart_at)
        and t.cart_abandoner.after_ms <= now - cart_at < t.cart_abandoner.until_ms
    ):
        out.append("cart_abandoner")

    if metrics is None:
        limit = today - t.prospect.window_days
        recent_cart = cart_at is not None and day_of(cart_at, zone) > limit
        if recent_cart or any(n > 0 and d > limit for d, n in state.open_days.items()):
            out.append("prospect")

    e = t.engaged_non_buyer
    opens_limit = today - e.opens_window_days
    opens = sum(n for d, n in state.open_days.items() if d > opens_limit)
    if opens >= e.min_opens and (
        metrics is None or day_of(metrics.last_order_at, zone) <= today - e.no_order_days
    ):
        out.append("engaged_non_buyer")

    return tuple(sorted(out))
