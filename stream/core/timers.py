"""When can time alone change a customer's segment or tags? (spec §7)

Why candidates instead of "re-evaluate every day": the worker must emit time-caused
changes for millions of idle customers without scanning them, so each state yields the
next instant worth looking at and the worker keeps customers in a timer index by it.

Between two consecutive candidates the evaluation is constant, because every
time-dependent term of the rules is a step function of ``day(now)`` or of ``now`` whose
steps are listed here:

- recency = ``day(now) - day(last order)``: the steps that matter are the day after each
  R threshold, one_time_buyer / lapsed minimum, repeat_purchaser / overdue maximum + 1,
  the overdue limit ``floor(max(min_days, k * gap)) + 1`` and engaged_non_buyer's
  ``no_order_days`` (the only order day that matters there is the latest);
- each order still in the window leaves frequency / monetary / coupon share at 00:00 of
  ``day(order) + window_days``;
- the latest cart event: ``+ after_hours`` and ``+ until_days`` (exact instants) and the
  prospect window (00:00 of ``day(cart) + 30``);
- each day with counted opens: 00:00 of ``day + opens_window_days`` and ``day + 30``.

Day-based candidates are 00:00 (business time zone) of the day, via ``day_start_ms``.
Every candidate is a *possible* change: ``advance`` evaluates it and may find nothing.
"""

from __future__ import annotations

import math

from stream.rules import Rules

from .metrics import compute_metrics
from .state import CustomerState
from .tags import overdue_limit
from .timeutil import day_of, day_start_ms


def candidate_instants(state: CustomerState, rules: Rules) -> set[int]:
    """Every instant at which the evaluation may step (some may be in the past)."""
    if state.evaluated_at is None:
        return set()
    zone = rules.zone
    t = rules.tags
    days: set[int] = set()
    exact: set[int] = set()

    metrics = compute_metrics(state, state.evaluated_at, rules)
    if metrics is not None:
        last_day = day_of(metrics.last_order_at, zone)
        offsets = {limit + 1 for limit in rules.scores.recency.thresholds}
        offsets.add(t.one_time_buyer.min_recency_days)
        offsets.add(t.lapsed.min_recency_days)
        offsets.add(t.repeat_purchaser.max_recency_days + 1)
        offsets.add(t.overdue.max_recency_days + 1)
        offsets.add(t.engaged_non_buyer.no_order_days)
        if metrics.orders_lifetime >= 2:
            offsets.add(math.floor(overdue_limit(metrics, rules)) + 1)
        days.update(last_day + k for k in offsets)
        for rec in state.orders.values():
            if rec.counted:
                assert rec.at is not None
                days.add(day_of(rec.at, zone) + rules.window_days)

    if state.cart_at is not None:
        exact.add(state.cart_at + t.cart_abandoner.after_ms)
        exact.add(state.cart_at + t.cart_abandoner.until_ms)
        days.add(day_of(state.cart_at, zone) + t.prospect.window_days)

    for d in state.open_days:
        days.add(d + t.engaged_non_buyer.opens_window_days)
        days.add(d + t.prospect.window_days)

    exact.update(day_start_ms(d, zone) for d in days)
    return exact


def next_due(state: CustomerState, rules: Rules) -> int | None:
    """The next instant after ``evaluated_at`` (and after what ``advance`` already checked)
    at which a time-caused change is possible; None if time alone can change nothing."""
    if state.evaluated_at is None:
        return None
    after = state.evaluated_at if state.checked_to is None else max(state.evaluated_at, state.checked_to)
    future = [c for c in candidate_instants(state, rules) if c > after]
    return min(future) if future else None
