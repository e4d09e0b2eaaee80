"""Spec §§4-5: R/F/M scores, FM and the segment grid.

Kept separate from the metrics so the grid and thresholds (which come from the rules
file) are tested cell by cell and edge by edge on their own.
"""

from __future__ import annotations

from typing import NamedTuple

from stream.rules import Rules

from .metrics import Metrics
from .params import RuleParams, params_for


class Scores(NamedTuple):
    """Immutable; a NamedTuple for construction speed (see ``Metrics``)."""

    r: int
    f: int
    m: int
    fm: int

    def to_json_dict(self) -> dict[str, int]:
        return {"r": self.r, "f": self.f, "m": self.m, "fm": self.fm}


NULL_SCORES: dict[str, None] = {"r": None, "f": None, "m": None, "fm": None}


def _at_most(value: int, thresholds: tuple[int, ...]) -> int:
    """5 if value <= t[0], 4 if <= t[1], 3 if <= t[2], 2 if <= t[3], else 1."""
    t5, t4, t3, t2 = thresholds
    return 5 if value <= t5 else 4 if value <= t4 else 3 if value <= t3 else 2 if value <= t2 else 1


def _at_least(value: int, thresholds: tuple[int, ...]) -> int:
    """5 if value >= t[0], 4 if >= t[1], 3 if >= t[2], 2 if >= t[3], else 1."""
    t5, t4, t3, t2 = thresholds
    return 5 if value >= t5 else 4 if value >= t4 else 3 if value >= t3 else 2 if value >= t2 else 1


def r_score(recency_days: int, rules: Rules) -> int:
    """5 if recency <= t5, 4 if <= t4, 3 if <= t3, 2 if <= t2, else 1."""
    return _at_most(recency_days, params_for(rules).recency_thresholds)


def f_score(frequency: int, rules: Rules) -> int:
    """5 if frequency >= t5 ... 2 if >= t2, else 1."""
    return _at_least(frequency, params_for(rules).frequency_thresholds)


def m_score(monetary_cents: int, rules: Rules) -> int:
    """Compares the cent-rounded monetary value with the thresholds (in cents)."""
    return _at_least(monetary_cents, params_for(rules).monetary_cents)


def fm_score(f: int, m: int) -> int:
    """floor((F + M) / 2 + 0.5): the mean of F and M, halves rounded up (integer math)."""
    return (f + m + 1) // 2


def segment_for(r: int, fm: int, rules: Rules) -> str:
    return params_for(rules).segment_rows[r][fm - 1]


def compute_scores(metrics: Metrics, rules: Rules) -> Scores:
    return scores_for(metrics, params_for(rules))


def scores_for(metrics: Metrics, p: RuleParams) -> Scores:
    """``compute_scores`` with the rules' numbers already derived (the engine's hot path)."""
    r = _at_most(metrics.recency_days, p.recency_thresholds)
    f = _at_least(metrics.frequency, p.frequency_thresholds)
    m = _at_least(metrics.monetary_cents, p.monetary_cents)
    return Scores(r, f, m, (f + m + 1) // 2)  # fm_score, inlined
