"""Spec §6 behavioural tags at ``now``.

Ratios (coupon share, overdue gap) are compared exactly, with integers: a customer exactly
at 60 % or exactly at ``2 * gap`` must land on the same side in every implementation.
``share = num / den`` (from the rules, see ``params``), so ``discounted / frequency >= share``
is ``discounted * den >= num * frequency``; likewise for the overdue limit below.
"""

from __future__ import annotations

from stream.rules import Rules

from .metrics import Metrics
from .params import RuleParams, params_for
from .scoring import Scores
from .state import CustomerState


def overdue_first_day(metrics: Metrics, p: RuleParams) -> int:
    """The smallest recency (days) that is above the overdue limit
    ``max(min_days, gap_multiplier * gap)``, ``gap = span / (orders_lifetime - 1)``:
    ``floor(limit) + 1``. Needs ``orders_lifetime >= 2``."""
    span = metrics.last_order_day - metrics.first_order_day
    gap_floor = (p.gap_multiplier_num * span) // (p.gap_multiplier_den * (metrics.orders_lifetime - 1))
    return max(p.overdue_min_days, gap_floor) + 1


def _is_overdue(recency: int, metrics: Metrics, p: RuleParams) -> bool:
    """``recency > max(min_days, num / den * span / (lifetime - 1))``, cross-multiplied."""
    span = metrics.last_order_day - metrics.first_order_day
    return recency > p.overdue_min_days and (
        recency * p.gap_multiplier_den * (metrics.orders_lifetime - 1) > p.gap_multiplier_num * span
    )


def compute_tags(
    state: CustomerState,
    metrics: Metrics | None,
    scores: Scores | None,
    now: int,
    rules: Rules,
) -> tuple[str, ...]:
    """Sorted tag names holding at ``now``."""
    p = params_for(rules)
    return tags_at(state, metrics, scores, now, p.day_of(now), p)


def tags_at(
    state: CustomerState,
    metrics: Metrics | None,
    scores: Scores | None,
    now: int,
    today: int,
    p: RuleParams,
) -> tuple[str, ...]:
    """``compute_tags`` with the rules' numbers and ``today = day(now)`` already derived
    (the engine's hot path)."""
    out: list[str] = []

    if metrics is not None and scores is not None:
        rec = metrics.recency_days
        life = metrics.orders_lifetime
        if life == 1 and rec >= p.one_time_min_recency:
            out.append("one_time_buyer")
        if life >= p.repeat_min_orders and rec <= p.repeat_max_recency:
            out.append("repeat_purchaser")
        if rec >= p.lapsed_min_recency:
            out.append("lapsed")
        if scores.m >= p.high_spender_min_m:
            out.append("high_spender")
        if scores.f >= p.low_spender_min_f and scores.m <= p.low_spender_max_m:
            out.append("low_spender")
        freq = metrics.frequency
        if freq >= p.coupon_min_frequency and metrics.discounted * p.coupon_share_den >= p.coupon_share_num * freq:
            out.append("coupon_lover")
        if life >= p.overdue_min_orders and rec <= p.overdue_max_recency and _is_overdue(rec, metrics, p):
            out.append("overdue")

    cart_at = state.cart_at
    if (
        cart_at is not None
        and state.cart_open
        and (metrics is None or metrics.last_order_at < cart_at)
        and p.cart_after_ms <= now - cart_at < p.cart_until_ms
    ):
        out.append("cart_abandoner")

    open_days = state.open_days
    if metrics is None:
        limit = today - p.prospect_window_days
        recent_cart = cart_at is not None and p.day_of(cart_at) > limit
        if recent_cart or any(n > 0 and d > limit for d, n in open_days.items()):
            out.append("prospect")

    if open_days:
        opens_limit = today - p.engaged_opens_window_days
        opens = sum(n for d, n in open_days.items() if d > opens_limit)
        if opens >= p.engaged_min_opens and (
            metrics is None or metrics.last_order_day <= today - p.engaged_no_order_days
        ):
            out.append("engaged_non_buyer")

    return tuple(sorted(out))
