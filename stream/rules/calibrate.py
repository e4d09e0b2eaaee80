"""Propose R/F/M thresholds from observed customers (classic RFM quintile scoring).

Why: the spec's default thresholds suit a typical store; a store whose customers buy
weekly (or once a year) gets better spread segments when each score band holds about a
fifth of its customers. ``calibrate`` is pure: it only looks at the metrics handed in and
returns a ``Rules`` with new score thresholds and everything else unchanged (defaults,
or the given ``base``).

Quintiles use the nearest-rank method on the sorted values (``q(p)`` = the value at rank
``ceil(p * n)``, 1-based), so thresholds are always observed values:

- R: ``t5 = q(0.2)``, ``t4 = q(0.4)``, ``t3 = q(0.6)``, ``t2 = q(0.8)`` of recency_days
  (fewer days is better: the most recent fifth scores 5).
- F, M: ``t5 = q(0.8)``, ``t4 = q(0.6)``, ``t3 = q(0.4)``, ``t2 = q(0.2)`` (more is better).

Ties: real data is lumpy (most customers have frequency 1), so several quintiles can be
equal, but thresholds must be strictly monotonic. Starting from the least demanding
band (R: score 5's limit is the most demanding, so we start at ``t5`` and go up; F/M:
start at ``t2``) each next threshold is raised to at least the previous one plus one
step (1 day, 1 order, 0.01 of money). The lower bands keep following the data and only
the upper bands get stricter when values collide: a tie never merges two bands.
Frequency thresholds are at least 1; with no usable input the base thresholds are kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

from .model import Rules


def _quantile(sorted_values: list, p: float):
    n = len(sorted_values)
    rank = max(1, math.ceil(p * n))
    return sorted_values[min(rank, n) - 1]


def _strictly_up(values: list, step, floor) -> list:
    out = []
    for v in values:
        v = max(v, floor)
        if out and v < out[-1] + step:
            v = out[-1] + step
        out.append(v)
    return out


def calibrate(
    profiles_metrics: Iterable[tuple[int | None, int | None, float | Decimal | None]],
    base: Rules | None = None,
) -> Rules:
    """Rules whose R/F/M thresholds are the quintiles of ``(recency_days, frequency, monetary)``.

    Tuples with a ``None`` (customers without any counted order) are skipped.
    """
    base = base if base is not None else Rules()
    rec: list[int] = []
    freq: list[int] = []
    mon: list[Decimal] = []
    for recency, frequency, monetary in profiles_metrics:
        if recency is None or frequency is None or monetary is None:
            continue
        rec.append(int(recency))
        freq.append(int(frequency))
        mon.append(Decimal(str(monetary)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    if not rec:
        return base
    rec.sort()
    freq.sort()
    mon.sort()
    r = _strictly_up([_quantile(rec, p) for p in (0.2, 0.4, 0.6, 0.8)], 1, 0)
    f = _strictly_up([_quantile(freq, p) for p in (0.2, 0.4, 0.6, 0.8)], 1, 1)
    m = _strictly_up([_quantile(mon, p) for p in (0.2, 0.4, 0.6, 0.8)], Decimal("0.01"), Decimal(0))
    scores = base.scores.model_copy(
        update={
            "recency": base.scores.recency.model_validate({"thresholds": tuple(r)}),
            "frequency": base.scores.frequency.model_validate({"thresholds": tuple(reversed(f))}),
            "monetary": base.scores.monetary.model_validate({"thresholds": tuple(reversed(m))}),
        }
    )
    # Re-validate the whole model so the result is exactly what loading a file would give.
    data = base.model_dump(mode="python")
    data["scores"] = scores.model_dump(mode="python")
    return Rules.model_validate(data)
