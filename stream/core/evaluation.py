"""One evaluation of a customer at ``now``: metrics, scores, segment and tags together.

Pure: never mutates the state. The engine diffs consecutive evaluations into changes,
``profile`` renders one as the spec §8 snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream.rules import Rules

from .metrics import Metrics, compute_metrics
from .scoring import Scores, compute_scores, segment_for
from .state import CustomerState
from .tags import compute_tags


@dataclass(frozen=True, slots=True)
class Evaluation:
    now: int
    metrics: Metrics | None
    scores: Scores | None
    segment: str | None
    tags: tuple[str, ...]


def evaluate(state: CustomerState, now: int, rules: Rules) -> Evaluation:
    metrics = compute_metrics(state, now, rules)
    scores = compute_scores(metrics, rules) if metrics is not None else None
    segment = segment_for(scores.r, scores.fm, rules) if scores is not None else None
    tags = compute_tags(state, metrics, scores, now, rules)
    return Evaluation(now=now, metrics=metrics, scores=scores, segment=segment, tags=tags)
