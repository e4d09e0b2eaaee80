"""The batch path: a history of raw events in, the same profiles and changes as the worker out.

It runs the very processor the worker runs, over one in-memory store. Per customer the
results equal the worker's whenever each customer's events reach the worker in the
order they have in the history (true for a time-ordered history).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from stream.core.changes import Change
from stream.core.profile import profile
from stream.events import Rejection
from stream.processing.intake import decode_input
from stream.processing.processor import PartitionProcessor
from stream.processing.store import MemoryStore
from stream.rules import Rules


@dataclass
class BatchResult:
    changes: list[Change] = field(default_factory=list)
    profiles: list[dict[str, Any]] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    events: int = 0


def run_batch(raw_events: Iterable[bytes], rules: Rules, until: int | None) -> BatchResult:
    store = MemoryStore()
    processor = PartitionProcessor(rules, store)
    result = BatchResult()
    for raw in raw_events:
        decoded = decode_input(raw, rules)
        if isinstance(decoded, Rejection):
            result.rejected[decoded.reason] += 1
            continue
        result.events += 1
        result.changes.extend(processor.on_event(decoded).changes)
    if until is not None:
        result.changes.extend(processor.on_tick(until).changes)
    clock = store.clock()
    for customer_id in sorted(store.states):
        state = store.states[customer_id]
        result.profiles.append(profile(state, max(clock, state.evaluated_at or clock), rules))
    return result
