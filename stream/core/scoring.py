"""Spec §§4-5: R/F/M scores, FM and the segment grid.

Kept separate from the metrics so the grid and thresholds (which come from the rules
file) are tested cell by cell and edge by edge on their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream.rules import Rules

from .metrics import Metrics


@dataclass(frozen=True, slots=True)
class Scores:
    r: int
    f: int
    m: int
    fm: int

    def to_json_dict(self) -> dict[str, int]:
        return {"r": self.r, "f": self.f, "m": self.m, "fm": self.fm}


NULL_SCORES: dict[str, None] = {"r": None, "f": None, "m": None, "fm": None}


def r_score(recency_days: int, rules: Rules) -> int:
    """5 if recency <= t5, 4 if <= t4, 3 if <= t3, 2 if <= t2, else 1."""
    for score, limit in zip((5, 4, 3, 2), rules.scores.recency.thresholds):
        if recency_days <= limit:
            return score
    return 1


def f_score(frequency: int, rules: Rules) -> int:
    """5 if frequency >= t5 ... 2 if >= t2, else 1."""
    for score, limit in zip((5, 4, 3, 2), rules.scores.frequency.thresholds):
        if frequency >= limit:
            return score
    return 1


def m_score(monetary_cents: int, rules: Rules) -> int:
    """Compares the cent-rounded monetary value with the thresholds (in cents)."""
    for score, limit in zip((5, 4, 3, 2), rules.monetary_cents):
        if monetary_cents >= limit:
            return score
    return 1


def fm_score(f: int, m: int) -> int:
    """floor((F + M) / 2 + 0.5): the mean of F and M, halves rounded up (integer math)."""
    return (f + m + 1) // 2


def segment_for(r: int, fm: int, rules: Rules) -> str:
    return rules.segments.row(r)[fm - 1]


def compute_scores(metrics: Metrics, rules: Rules) -> Scores:
    r = r_score(metrics.recency_days, rules)
    f = f_score(metrics.frequency, rules)
    m = m_score(metrics.monetary_cents, rules)
    return Scores(r=r, f=f, m=m, fm=fm_score(f, m))
