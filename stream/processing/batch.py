"""The batch path: a history of raw events in, the same profiles and changes as the worker out.

It runs the very processor the worker runs, over one in-memory store. Per customer the
results equal the worker's whenever each customer's events reach the worker in the
order they have in the history (true for a time-ordered history).

A change of rules at instant ``T`` is what a worker does when it is restarted with new
rules after a replay ``--until T``: the clock ticks to ``T`` under the old rules (the
first event after ``T`` in the history triggers it), then every customer is moved to the
new rules (``stream/processing/rules_change.py``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from stream.core.changes import Change
from stream.core.events import DEFAULT_MAX_EVENT_LEAD_SECONDS
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


def run_batch(
    raw_events: Iterable[bytes], rules: Rules, until: int | None, rules_changes: Sequence[tuple[int, Rules]] = (),
    *, published_at_ms: int | None = None, max_lead_ms: int = round(DEFAULT_MAX_EVENT_LEAD_SECONDS * 1000),
) -> BatchResult:
    """``rules_changes``: (instant, the rules from then on), in any order. Raises
    ``RulesChangeError`` when a change's rules cannot take over the states kept.
    ``published_at_ms``: when the events count as published, for the worker's check that
    none occurred after that (``intake.decode_input``; a file has no Kafka timestamps:
    ``segments batch`` passes the time it runs)."""
    store = MemoryStore()
    processor = PartitionProcessor(rules, store)
    pending = sorted(rules_changes, key=lambda change: change[0])
    result = BatchResult()
    for raw in raw_events:
        decoded = decode_input(raw, processor.rules, published_at_ms=published_at_ms, max_lead_ms=max_lead_ms)
        if isinstance(decoded, Rejection):
            result.rejected[decoded.reason] += 1
            continue
        while pending and decoded.occurred_at > pending[0][0]:
            processor = _change_rules(processor, store, *pending.pop(0), result)
        result.events += 1
        result.changes.extend(processor.on_event(decoded).changes)
    while pending and (until is None or pending[0][0] <= until):
        processor = _change_rules(processor, store, *pending.pop(0), result)
    if until is not None:
        result.changes.extend(processor.on_tick(until).changes)
    clock = store.clock()
    for customer_id in sorted(store.states):
        state = store.states[customer_id]
        if state.erased:
            continue
        result.profiles.append(profile(state, max(clock, state.evaluated_at or clock), processor.rules))
    return result


def _change_rules(
    processor: PartitionProcessor, store: MemoryStore, at: int, rules: Rules, result: BatchResult,
) -> PartitionProcessor:
    result.changes.extend(processor.on_tick(at).changes)
    changed = PartitionProcessor(rules, store)
    result.changes.extend(changed.sweep_rules(len(store.states) + 1).changes)
    return changed
