"""A point-in-time view of one worker, taken by its shell, read by every ops endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field

from stream.ops.telemetry import PlaybookTelemetry, WorkerTelemetry
from stream.processing.census import Census, combine
from stream.processing.rules_change import RulesRecord


@dataclass(frozen=True)
class PartitionOffsets:
    """One topic-partition the worker's group consumes (kafka-consumer-groups' view).

    ``committed`` is the group's committed offset (the next offset to read), ``end`` the
    log-end offset; None when not known yet. ``unread_from`` is set for a partition the
    group never committed: the log start, where its consumers begin, so what is on the
    broker counts as lag (as ``segments lag`` counts it) instead of no lag at all."""

    topic: str
    partition: int
    committed: int | None
    end: int | None
    unread_from: int | None = None

    @property
    def lag(self) -> int | None:
        read_from = self.committed if self.committed is not None else self.unread_from
        if read_from is None or self.end is None:
            return None
        return max(0, self.end - read_from)


@dataclass(frozen=True)
class WorkerSnapshot:
    app_id: str
    group: str
    rules_version: str
    now_ms: int
    ready: bool
    offsets: list[PartitionOffsets]
    # Partition of the internal events topic -> its clock (epoch ms, None before any
    # event or tick). The partitions this worker owns.
    clocks: dict[int, int | None]
    censuses: dict[int, Census]
    telemetry: WorkerTelemetry = field(repr=False)
    # Valid input events the intake's event-time merge holds back.
    held_events: int = 0
    # Partition -> the rules it runs under, and how far a change of them has got.
    rules: dict[int, RulesRecord] = field(default_factory=dict)
    # How the worker runs ("wall" or "event"; "at_least_once" or "exactly_once").
    clock: str = "wall"
    processing_guarantee: str = "at_least_once"
    # The shared RocksDB memory (rocksdb_memory_mib): bytes held now and the budget; None
    # when each database has its own.
    rocksdb_memory_bytes: int | None = None
    rocksdb_memory_budget_bytes: int | None = None
    # Partition -> the earliest instant of the timers due by its clock that wait for its
    # next batches (timers_per_batch); partitions with none are absent.
    timer_backlogs: dict[int, int] = field(default_factory=dict)

    @property
    def census(self) -> Census:
        return combine(self.censuses.values())

    def event_time_lag_seconds(self, partition: int) -> float | None:
        clock = self.clocks.get(partition)
        return None if clock is None else (self.now_ms - clock) / 1000

    def timers_behind_seconds(self, partition: int) -> float:
        """How far behind its clock the partition's earliest due timer not fired yet is
        (0: none)."""
        clock, backlog = self.clocks.get(partition), self.timer_backlogs.get(partition)
        return 0.0 if clock is None or backlog is None else max(0.0, (clock - backlog) / 1000)


@dataclass(frozen=True)
class PlaybooksSnapshot:
    group: str
    ready: bool
    offsets: list[PartitionOffsets]
    telemetry: PlaybookTelemetry = field(repr=False)
