"""How many customers a partition holds, per segment and per tag, and its pending timers.

Operators want the segment distribution on a dashboard, and counting it by scanning
every customer at each scrape would cost in proportion to all customers. So the census
is kept incrementally: each batch compares every customer it touched before and after,
and the result is stored beside the partition clock, written with the same flush as the
states. It is recounted from the states only when it cannot be trusted (an unclean stop
under at-least-once, or a partition written before censuses existed).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

import orjson

from stream.core.state import CustomerState

NO_SEGMENT = "none"

# (segment, tags) of a customer as last emitted; None for a customer not stored (or
# erased: only a stub is stored, stream/core/erasure.py).
Standing = tuple[str | None, tuple[str, ...]]


def standing_of(state: CustomerState) -> Standing | None:
    return None if state.erased else (state.segment, state.tags)


@dataclass
class Census:
    customers: int = 0
    segments: Counter[str] = field(default_factory=Counter)
    tags: Counter[str] = field(default_factory=Counter)
    timers: int = 0

    def move(self, before: Standing | None, after: Standing | None) -> None:
        """One customer went from ``before`` to ``after`` (None: not stored)."""
        if before is not None:
            self.customers -= 1
            self.segments[before[0] or NO_SEGMENT] -= 1
            for tag in before[1]:
                self.tags[tag] -= 1
        if after is not None:
            self.customers += 1
            self.segments[after[0] or NO_SEGMENT] += 1
            for tag in after[1]:
                self.tags[tag] += 1

    def to_bytes(self) -> bytes:
        return orjson.dumps({
            "customers": self.customers,
            "segments": {name: n for name, n in self.segments.items() if n},
            "tags": {name: n for name, n in self.tags.items() if n},
            "timers": self.timers,
        })

    @classmethod
    def from_bytes(cls, raw: bytes) -> Census:
        doc = orjson.loads(raw)
        return cls(doc["customers"], Counter(doc["segments"]), Counter(doc["tags"]), doc["timers"])

    @classmethod
    def count(cls, states: Iterable[CustomerState], timers: int) -> Census:
        census = cls(timers=timers)
        for state in states:
            census.move(None, standing_of(state))
        return census


def combine(censuses: Iterable[Census]) -> Census:
    """The census of several partitions (what one worker owns)."""
    total = Census()
    for census in censuses:
        total.customers += census.customers
        total.segments.update(census.segments)
        total.tags.update(census.tags)
        total.timers += census.timers
    return total
