"""A derived view of a customer's records, computed once per change of them.

Why: between two events a customer is evaluated many times (at every time candidate, the
worker's ``next_due`` before and after each step, ``profile``), and each evaluation used
to walk all order records (business day of every order, window sums) and each
``next_due`` to rebuild every candidate. The records only change when an event is
applied or ``_prune`` drops something, so this view is built on first use after such a
change and kept on the state (never encoded, never compared; see
``CustomerState.records_changed``):

- metrics at any ``now`` are a binary search of ``day(now) - window_days`` in the counted
  orders' sorted days plus precomputed suffix sums (frequency, monetary, discounted);
- ``next_due`` is a binary search in the sorted time candidates (``timers``);
- ``_prune`` knows from ``oldest_record_day`` whether any record can be folded.

Everything here depends only on the order records, the folded aggregates, the cart, the
open days and the rules, never on ``now`` or ``evaluated_at``.
"""

from __future__ import annotations

from itertools import accumulate
from typing import NamedTuple

from .params import RuleParams
from .state import CustomerState


class RecordSummary(NamedTuple):
    """Immutable; a NamedTuple for construction speed (one per applied event)."""

    params: RuleParams  # built for these rules (a state used with other rules rebuilds it)
    orders_lifetime: int  # counted orders ever: folded + on record
    first_order_at: int | None  # None: no counted order (then there are no metrics)
    last_order_at: int | None
    first_order_day: int  # business days of the two (0 without orders)
    last_order_day: int
    counted_days: list[int]  # business days of the counted orders on record, ascending
    value_from: list[int]  # value_from[i]: micros (after refunds) of orders counted_days[i:]
    discounted_from: list[int]  # discounted_from[i]: how many of those had a discount
    oldest_record_day: int | None  # earliest day(at, or held_since) of any record
    candidates: list[int]  # distinct time candidates (epoch ms), ascending; see ``timers``


def summary_of(state: CustomerState, p: RuleParams) -> RecordSummary:
    """The state's summary for rules ``p``, built now if the records changed since."""
    memo = state.summary
    if memo is not None and memo.params is p:
        return memo
    memo = _build(state, p)
    state.summary = memo
    return memo


def _build(state: CustomerState, p: RuleParams) -> RecordSummary:
    day_of = p.day_of
    counted: list[tuple[int, int, int, bool]] = []  # (day, at, value, discounted)
    oldest_record_day: int | None = None
    for rec in state.orders.values():
        at = rec.at
        if at is None:  # a held cancellation/refund: only its age matters (_prune)
            day = day_of(rec.held_since)
        else:
            day = day_of(at)
            if not rec.cancelled:
                counted.append((day, at, rec.value, rec.discounted))
        if oldest_record_day is None or day < oldest_record_day:
            oldest_record_day = day
    counted.sort()
    counted_days = [c[0] for c in counted]
    # value_from[i] = sum(values[i:]): suffix sums, built back to front in C.
    value_from = list(accumulate(reversed([c[2] for c in counted]), initial=0))[::-1]
    discounted_from = list(accumulate(reversed([1 if c[3] else 0 for c in counted]), initial=0))[::-1]

    lifetime = state.folded_count + len(counted)
    first = state.folded_first
    last = state.folded_last
    if counted:
        instants = [c[1] for c in counted]
        first = min(instants) if first is None else min(first, min(instants))
        last = max(instants) if last is None else max(last, max(instants))
    if lifetime == 0 or first is None or last is None:
        first = last = None  # no counted order: no metrics (folded aggregates incomplete)

    # Time candidates (the list and why it is complete: ``timers`` docstring).
    candidate_days: set[int] = set()
    exact: set[int] = set()
    first_day = last_day = 0
    if first is not None and last is not None:
        first_day = day_of(first)
        last_day = day_of(last)
        window_days = p.window_days
        candidate_days.update([day + window_days for day in counted_days])  # leaves the window
        candidate_days.update([last_day + k for k in p.recency_step_offsets])
        if lifetime >= 2:
            # Overdue's gap-dependent limit: the first recency above
            # max(min_days, num / den * span / (lifetime - 1)) is its floor + 1.
            span = last_day - first_day
            gap_floor = (p.gap_multiplier_num * span) // (p.gap_multiplier_den * (lifetime - 1))
            candidate_days.add(last_day + max(p.overdue_min_days, gap_floor) + 1)
    cart_at = state.cart_at
    if cart_at is not None:
        exact.add(cart_at + p.cart_after_ms)
        exact.add(cart_at + p.cart_until_ms)
        candidate_days.add(day_of(cart_at) + p.prospect_window_days)
    for d in state.open_days:
        candidate_days.add(d + p.engaged_opens_window_days)
        candidate_days.add(d + p.prospect_window_days)
    exact.update(map(p.day_start, candidate_days))

    return RecordSummary(
        params=p,
        orders_lifetime=lifetime,
        first_order_at=first,
        last_order_at=last,
        first_order_day=first_day,
        last_order_day=last_day,
        counted_days=counted_days,
        value_from=value_from,
        discounted_from=discounted_from,
        oldest_record_day=oldest_record_day,
        candidates=sorted(exact),
    )
