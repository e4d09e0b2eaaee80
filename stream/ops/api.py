"""The dashboard's JSON documents, built from worker snapshots (see stream/ops/web.py for
the routes). Pure: the same snapshot always gives the same document."""

from __future__ import annotations

from itertools import islice
from typing import Any

from stream.core.timeutil import rfc3339_ms
from stream.ops.snapshot import WorkerSnapshot
from stream.processing.census import NO_SEGMENT
from stream.rules import SEGMENT_NAMES, TAG_NAMES


def _lag_key(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


def overview(snapshot: WorkerSnapshot) -> dict[str, Any]:
    telemetry = snapshot.telemetry
    census = snapshot.census
    return {
        "app_id": snapshot.app_id,
        "rules_version": snapshot.rules_version,
        "now": rfc3339_ms(snapshot.now_ms),
        "ready": snapshot.ready,
        "partitions": [
            {"topic": o.topic, "partition": o.partition, "committed": o.committed, "end": o.end, "lag": o.lag}
            for o in sorted(snapshot.offsets, key=lambda o: (o.topic, o.partition))
        ],
        "clocks": [
            {
                "partition": partition,
                "clock": None if clock is None else rfc3339_ms(clock),
                "event_time_lag_seconds": snapshot.event_time_lag_seconds(partition),
                **_rules_of(snapshot, partition),
            }
            for partition, clock in sorted(snapshot.clocks.items())
        ],
        "events_by_type": dict(telemetry.events_by_type),
        "dead_letters_by_reason": dict(telemetry.dead_letters_by_reason),
        "segments": {name: census.segments.get(name, 0) for name in (*SEGMENT_NAMES, NO_SEGMENT)},
        "tags": {name: census.tags.get(name, 0) for name in TAG_NAMES},
        "customers": census.customers,
        "pending_timers": census.timers,
        "changes_total": telemetry.changes_total,
        "transitions": [
            {"from": from_segment, "to": to_segment, "count": count}
            for (from_segment, to_segment), count in telemetry.transitions.most_common()
        ],
    }


def _rules_of(snapshot: WorkerSnapshot, partition: int) -> dict[str, Any]:
    """The rules the partition runs under; after a change of them, since when and whether
    every stored customer has been moved to them yet."""
    record = snapshot.rules.get(partition)
    if record is None:
        return {}
    out: dict[str, Any] = {"rules_version": record.version}
    if record.since is not None:
        out["rules_since"] = rfc3339_ms(record.since)
        out["rules_previous"] = record.previous
        out["rules_swept"] = record.swept
    if record.between:
        # Earlier changes whose sweeps this one took over: customers not moved yet pass
        # through these rules first.
        out["rules_between"] = [{"version": step.version, "since": rfc3339_ms(step.since)} for step in record.between]
    return out


def series_sample(snapshot: WorkerSnapshot) -> dict[str, Any]:
    """One point of the dashboard's time series (kept by the worker, see /api/series)."""
    telemetry = snapshot.telemetry
    census = snapshot.census
    return {
        "at": rfc3339_ms(snapshot.now_ms),
        "lag": {_lag_key(o.topic, o.partition): o.lag for o in snapshot.offsets if o.lag is not None},
        "events_by_type": dict(telemetry.events_by_type),
        "dead_letters": sum(telemetry.dead_letters_by_reason.values()),
        "segments": {name: census.segments.get(name, 0) for name in (*SEGMENT_NAMES, NO_SEGMENT)},
    }


def series(snapshot: WorkerSnapshot, interval_seconds: float) -> dict[str, Any]:
    return {"interval_seconds": interval_seconds, "samples": list(snapshot.telemetry.series)}


def recent_changes(snapshot: WorkerSnapshot, limit: int) -> dict[str, Any]:
    return {"changes": list(islice(reversed(snapshot.telemetry.recent_changes), max(0, limit)))}


def customer(profile: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    return {"profile": profile, "history": list(reversed(history))}
