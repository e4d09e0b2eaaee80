"""What a worker has done since it started: the counters and recent history that the
ops endpoints (/metrics, the dashboard's API) report. Pure Python; the worker's shell
feeds it, the endpoints read it."""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Iterable

# Bounds on what one worker keeps in memory for the dashboard.
RECENT_CHANGES = 500
SERIES_SAMPLES = 1800  # one hour at the default 2 s sampling interval
# Upper bounds (seconds) of the batch-duration histogram's buckets.
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))


@dataclass
class Histogram:
    """Cumulative bucket counts, as Prometheus histograms expose them."""

    bounds: tuple[float, ...] = BATCH_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * len(BATCH_BUCKETS))
    total: float = 0.0
    observations: int = 0

    def observe(self, value: float) -> None:
        for index, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[index] += 1
        self.total += value
        self.observations += 1


@dataclass
class WorkerTelemetry:
    events_by_type: Counter[str] = field(default_factory=Counter)
    dead_letters_by_reason: Counter[str] = field(default_factory=Counter)
    # (from, to) of segment changes; None for "no segment".
    transitions: Counter[tuple[str | None, str | None]] = field(default_factory=Counter)
    # (tag, "entered" | "left")
    tag_changes: Counter[tuple[str, str]] = field(default_factory=Counter)
    changes_total: int = 0
    erasures: int = 0  # customers erased (records of kind erasure)
    ticks: int = 0
    batch_duration: Histogram = field(default_factory=Histogram)
    recent_changes: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_CHANGES))
    series: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=SERIES_SAMPLES))
    started_at: float = field(default_factory=time.time)

    def record_event(self, event_type: str) -> None:
        self.events_by_type[event_type] += 1

    def record_dead_letter(self, reason: str) -> None:
        self.dead_letters_by_reason[reason] += 1

    def record_changes(self, records: Iterable[dict[str, Any]]) -> None:
        """Change records in their wire form (schemas/segment_change.schema.json)."""
        for record in records:
            self.changes_total += 1
            kind = record["kind"]
            if kind == "segment":
                self.transitions[(record["from"], record["to"])] += 1
            elif kind == "tag":
                self.tag_changes[(record["tag"], "entered" if record["entered"] else "left")] += 1
            else:
                self.erasures += 1
            if record.get("cause", {}).get("kind") == "erasure":
                self._forget_recent(record["customer_id"])
            else:
                self.recent_changes.append(record)

    def _forget_recent(self, customer_id: str) -> None:
        """An erased customer's changes leave the dashboard's list too."""
        kept = [record for record in self.recent_changes if record["customer_id"] != customer_id]
        if len(kept) != len(self.recent_changes):
            self.recent_changes.clear()
            self.recent_changes.extend(kept)

    def record_batch(self, seconds: float, ticks: int) -> None:
        self.batch_duration.observe(seconds)
        self.ticks += ticks


@dataclass
class PlaybookTelemetry:
    """What the playbooks app has decided since it started."""

    # (playbook, action, channel) of scheduled actions, holdout ones excluded
    emitted: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    skipped_by_reason: Counter[str] = field(default_factory=Counter)
    holdout_by_playbook: Counter[str] = field(default_factory=Counter)
    # decided | duplicate | malformed | erasure | unknown_kind
    changes_by_outcome: Counter[str] = field(default_factory=Counter)

    def record_actions(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            if record["status"] == "skipped":
                self.skipped_by_reason[record["skip_reason"]] += 1
            elif record["holdout"]:
                self.holdout_by_playbook[record["playbook"]] += 1
            else:
                self.emitted[(record["playbook"], record["action"], record["channel"])] += 1
