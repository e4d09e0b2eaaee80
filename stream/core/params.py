"""The rules' numbers as plain ints, derived once per ``Rules`` value.

Why: the engine evaluates customers hundreds of thousands of times in a replay, and each
evaluation reads some 25 thresholds. On the pydantic ``Rules`` model some of those are
computed properties (``after_ms`` multiplies Decimals on every access) and ratios are
``Fraction``\\s; here they are ints looked up once. Ratios are kept as exact integer
numerator/denominator pairs, so comparisons are exact cross-multiplications and land on the
same side as the ``Fraction`` definitions in the spec (e.g. exactly 60 % coupon share).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

from stream.rules import Rules

from .timeutil import calendar


@dataclass(frozen=True, slots=True)
class RuleParams:
    rules: Rules  # the Rules value these were derived from (also keeps it alive for the cache)
    version: str
    # 32 bits of the version, to tag what is stored with a state and depends on the rules
    # (``CustomerState.due_memo``): a state saved under other rules is not trusted.
    version_tag: int
    day_of: Callable[[int], int]  # business day of an instant (the rules' time zone)
    day_start: Callable[[int], int]  # first instant of a business day
    window_days: int
    # scores (spec §4): R 5..2 if recency <= t; F and M 5..2 if value >= t
    recency_thresholds: tuple[int, ...]
    frequency_thresholds: tuple[int, ...]
    monetary_cents: tuple[int, ...]
    segment_rows: tuple[tuple[str, ...], ...]  # segment_rows[r][fm - 1]; index 0 unused
    # tags (spec §6)
    one_time_min_recency: int
    repeat_min_orders: int
    repeat_max_recency: int
    lapsed_min_recency: int
    high_spender_min_m: int
    low_spender_min_f: int
    low_spender_max_m: int
    coupon_min_frequency: int
    coupon_share_num: int  # coupon share holds iff discounted * den >= num * frequency
    coupon_share_den: int
    overdue_min_orders: int
    overdue_min_days: int
    overdue_max_recency: int
    gap_multiplier_num: int  # overdue limit = max(min_days, num / den * gap)
    gap_multiplier_den: int
    cart_after_ms: int
    cart_until_ms: int
    prospect_window_days: int
    engaged_min_opens: int
    engaged_opens_window_days: int
    engaged_no_order_days: int
    open_days_kept: int  # opens older than this many days can never count again
    # Offsets (days after the latest order's day) at which a recency rule can flip,
    # overdue's gap-dependent limit aside (see ``timers``). Sorted, distinct.
    recency_step_offsets: tuple[int, ...]


_CACHE: dict[int, RuleParams] = {}  # id(rules) -> params; each entry holds its Rules alive
_CACHE_MAX = 64


def params_for(rules: Rules) -> RuleParams:
    """The derived numbers of ``rules`` (cached per ``Rules`` object)."""
    found = _CACHE.get(id(rules))
    if found is None or found.rules is not rules:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        found = _CACHE[id(rules)] = _derive(rules)
    return found


def _derive(rules: Rules) -> RuleParams:
    t = rules.tags
    cal = calendar(rules.zone)
    segs = rules.segments
    offsets = {limit + 1 for limit in rules.scores.recency.thresholds}
    offsets.add(t.one_time_buyer.min_recency_days)
    offsets.add(t.lapsed.min_recency_days)
    offsets.add(t.repeat_purchaser.max_recency_days + 1)
    offsets.add(t.overdue.max_recency_days + 1)
    offsets.add(t.engaged_non_buyer.no_order_days)
    return RuleParams(
        rules=rules,
        version=rules.version,
        version_tag=zlib.crc32(rules.version.encode()),
        day_of=cal.day_of,
        day_start=cal.day_start,
        window_days=rules.window_days,
        recency_thresholds=tuple(rules.scores.recency.thresholds),
        frequency_thresholds=tuple(rules.scores.frequency.thresholds),
        monetary_cents=tuple(rules.monetary_cents),
        segment_rows=((),) + tuple(tuple(segs.row(r)) for r in (1, 2, 3, 4, 5)),
        one_time_min_recency=t.one_time_buyer.min_recency_days,
        repeat_min_orders=t.repeat_purchaser.min_orders,
        repeat_max_recency=t.repeat_purchaser.max_recency_days,
        lapsed_min_recency=t.lapsed.min_recency_days,
        high_spender_min_m=t.high_spender.min_m,
        low_spender_min_f=t.low_spender.min_f,
        low_spender_max_m=t.low_spender.max_m,
        coupon_min_frequency=t.coupon_lover.min_frequency,
        coupon_share_num=rules.coupon_share.numerator,
        coupon_share_den=rules.coupon_share.denominator,
        overdue_min_orders=t.overdue.min_orders,
        overdue_min_days=t.overdue.min_days,
        overdue_max_recency=t.overdue.max_recency_days,
        gap_multiplier_num=rules.gap_multiplier.numerator,
        gap_multiplier_den=rules.gap_multiplier.denominator,
        cart_after_ms=t.cart_abandoner.after_ms,
        cart_until_ms=t.cart_abandoner.until_ms,
        prospect_window_days=t.prospect.window_days,
        engaged_min_opens=t.engaged_non_buyer.min_opens,
        engaged_opens_window_days=t.engaged_non_buyer.opens_window_days,
        engaged_no_order_days=t.engaged_non_buyer.no_order_days,
        open_days_kept=max(t.engaged_non_buyer.opens_window_days, t.prospect.window_days),
        recency_step_offsets=tuple(sorted(offsets)),
    )
