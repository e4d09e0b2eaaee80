"""What the customer agent does with one batch of ``segments-events`` records, between
reading them and sending: the processor over the partition's tables, then the records to
publish (segment changes, profiles) and each customer's history. No Kafka here, so
``bench/bench_worker_batches.py`` measures exactly this code without a broker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stream.core.json_bytes import dumps_compact
from stream.core.profile import profile
from stream.core.state import CustomerState
from stream.core.timeutil import rfc3339_ms
from stream.events.internal import NUDGE, decode_record
from stream.processing import PartitionProcessor, StepResult
from stream.processing.rules_change import RulesRecord
from stream.rules import Rules
from stream.worker.tables import TableStore

KeyValue = tuple[bytes, bytes]


def profile_record(state: CustomerState, rules: Rules) -> bytes:
    return dumps_compact(profile(state, state.evaluated_at, rules))


@dataclass
class BatchOutput:
    """``change_records``: the segment changes in their wire form (dicts, for telemetry);
    ``changes`` and ``profiles``: the same changes and the touched customers' profiles
    as (key, value) records for their topics (value None: a tombstone, the customer was
    erased)."""

    change_records: list[dict[str, Any]] = field(default_factory=list)
    changes: list[KeyValue] = field(default_factory=list)
    profiles: list[tuple[bytes, bytes | None]] = field(default_factory=list)
    ticks: int = 0
    # The partition's rules record after the batch (stream/processing/rules_change.py).
    rules: RulesRecord | None = None
    # The instant of the earliest timer due by the clock left for the next batches
    # (``timers_per_batch``); None: every due one fired.
    first_due_left: int | None = None


def process_records(
    values: list[bytes], store: TableStore, rules: Rules, emitted_at_ms: int, sweep_customers: int,
    timers_per_batch: int | None = None,
) -> BatchOutput:
    """Run events and ticks (``segments-events`` values) through the processor over
    ``store``, firing up to ``timers_per_batch`` due customers' timers (None: all), then,
    after a change of rules, move up to ``sweep_customers`` more stored customers to the
    new rules; the caller sends the outputs, then flushes the store.

    Raises ``RulesChangeError`` when the stored states cannot be carried over to ``rules``."""
    processor = PartitionProcessor(rules, store, timers_per_batch=timers_per_batch)
    result = StepResult()
    output = BatchOutput()
    for value in values:
        decoded = decode_record(value)
        if decoded is NUDGE:
            continue
        if isinstance(decoded, int):
            output.ticks += 1
            result.extend(processor.on_tick(decoded))
        else:
            result.extend(processor.on_event(decoded))
    result.extend(processor.catch_up())  # a nudge's batch, or one after a tick that left some
    result.extend(processor.sweep_rules(sweep_customers))
    output.rules = processor.rules_record()
    output.first_due_left = processor.first_due_left()
    store.set_timer_backlog(output.first_due_left)
    emitted_at = rfc3339_ms(emitted_at_ms)
    for change in result.changes:
        change_record = change.to_json_dict()
        change_record["emitted_at"] = emitted_at
        output.change_records.append(change_record)
        output.changes.append((change.customer_id.encode(), dumps_compact(change_record)))
        if change.cause.kind != "erasure":
            store.add_history(change.customer_id, change.seq, change_record)
        elif change.kind == "erasure":
            store.forget_history(change.customer_id)
    for customer_id, state in result.touched.items():
        output.profiles.append((customer_id.encode(), None if state.erased else profile_record(state, rules)))
    return output
