"""One evaluation of a customer at ``now``: metrics, scores, segment and tags together.

Pure: never mutates the state. The engine diffs consecutive evaluations into changes,
``profile`` renders one as the spec §8 snapshot.
"""

from __future__ import annotations

from typing import NamedTuple

from stream.rules import Rules

from .metrics import Metrics, metrics_on_day
from .params import RuleParams, params_for
from .scoring import Scores, scores_for
from .state import CustomerState
from .summary import summary_of
from .tags import tags_at


class Evaluation(NamedTuple):
    """Immutable; a NamedTuple for construction speed (see ``Metrics``)."""

    now: int
    metrics: Metrics | None
    scores: Scores | None
    segment: str | None
    tags: tuple[str, ...]


def evaluate(state: CustomerState, now: int, rules: Rules) -> Evaluation:
    return evaluate_at(state, now, params_for(rules))


def evaluate_at(state: CustomerState, now: int, p: RuleParams) -> Evaluation:
    """``evaluate`` with the rules' numbers already derived (the engine's hot path)."""
    today = p.day_of(now)
    metrics = metrics_on_day(summary_of(state, p), today, p)
    if metrics is None:
        scores = None
        segment = None
    else:
        scores = scores_for(metrics, p)
        segment = p.segment_rows[scores.r][scores.fm - 1]
    tags = tags_at(state, metrics, scores, now, today, p)
    return Evaluation(now, metrics, scores, segment, tags)
