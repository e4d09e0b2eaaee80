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

The candidates depend only on the order records, the folded aggregates, the cart and the
open days (not on ``now``, ``evaluated_at`` or what was emitted), so they are built once
per change of those, sorted, in the state's ``RecordSummary`` (``summary``): ``next_due``,
which the worker calls several times per event, is a binary search. Its answer is also
kept on the state and stored with it (``CustomerState.due_memo``): the worker decodes a
customer's state afresh for every event, and most events find nothing due yet, which
the memo tells without building the summary (``due_between``).
"""

from __future__ import annotations

from bisect import bisect_right

from stream.rules import Rules

from .params import RuleParams, params_for
from .state import CustomerState
from .summary import summary_of


def candidate_instants(state: CustomerState, rules: Rules) -> set[int]:
    """Every instant at which the evaluation may step (some may be in the past)."""
    if state.evaluated_at is None:
        return set()
    return set(summary_of(state, params_for(rules)).candidates)


def _checked_after(state: CustomerState, evaluated_at: int) -> int:
    """Candidates up to here are done: ``evaluated_at``, or ``checked_to`` when later."""
    checked_to = state.checked_to
    return evaluated_at if checked_to is None or checked_to < evaluated_at else checked_to


def next_due(state: CustomerState, rules: Rules) -> int | None:
    """The next instant after ``evaluated_at`` (and after what ``advance`` and the engine's
    look-ahead already checked) at which a time-caused change is possible; None if time
    alone can change nothing."""
    return next_due_at(state, params_for(rules))


def next_due_at(state: CustomerState, p: RuleParams) -> int | None:
    """``next_due`` with the rules' numbers already derived; kept on the state
    (``CustomerState.due_memo``) until what it depends on changes."""
    if state.evaluated_at is None:
        return None
    memo = state.due_memo
    if memo is not None and memo[0] == p.version_tag:
        return memo[1]
    candidates = summary_of(state, p).candidates
    i = bisect_right(candidates, _checked_after(state, state.evaluated_at))
    due = candidates[i] if i < len(candidates) else None
    state.due_memo = (p.version_tag, due)
    return due


def due_between(state: CustomerState, now: int, p: RuleParams) -> list[int]:
    """The candidates in ``(checked after, now]``, ascending: what ``advance`` to ``now``
    evaluates, for as long as the records (and so the candidates) stay the same."""
    if state.evaluated_at is None:
        return []
    memo = state.due_memo
    if memo is not None and memo[0] == p.version_tag and (memo[1] is None or memo[1] > now):
        return []  # nothing due yet, known without the summary
    candidates = summary_of(state, p).candidates
    start = bisect_right(candidates, _checked_after(state, state.evaluated_at))
    return candidates[start : bisect_right(candidates, now, lo=start)]
