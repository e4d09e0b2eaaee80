"""The worker's side of the ops endpoints: reads faust's consumer and tables into a
:class:`~stream.ops.snapshot.WorkerSnapshot` (faust exposes no public API for committed
offsets, so this is the one place that knows where faust keeps them)."""

from __future__ import annotations

import logging
import time
from typing import Any

from stream.core.profile import profile
from stream.core.state import CustomerState
from stream.ops.snapshot import PartitionOffsets, WorkerSnapshot
from stream.ops.telemetry import WorkerTelemetry
from stream.processing.census import Census
from stream.rules import Rules
from stream.processing.rules_change import RulesRecord
from stream.worker.table_keys import backlog_key, census_key, clock_key, partition_of, rules_key
from stream.worker.tables import read_history

log = logging.getLogger(__name__)

# How often the broker is asked for the offsets of source partitions the consumer has
# none for; a scrape's lag for such a partition is at most this old.
LOG_BOUNDS_REFRESH_SECONDS = 5.0


def group_offsets(app: Any, topics: set[str], log_bounds: SourceLogBounds | None = None) -> list[PartitionOffsets]:
    """Committed and log-end offsets of the partitions of ``topics`` this app's consumer
    owns. (The consumer is also assigned the tables' changelog partitions; the group
    commits offsets only for the topics it subscribes to.) Where the consumer knows
    none, ``log_bounds`` gives the broker's."""
    consumer = app.consumer
    rows = []
    for tp in consumer.assignment():
        if tp.topic not in topics:
            continue
        committed, end = consumer._committed_offset.get(tp), consumer.highwater(tp)
        start, broker_end = log_bounds.of(tp) if log_bounds is not None else (None, None)
        rows.append(PartitionOffsets(
            tp.topic, tp.partition, committed, end if end is not None else broker_end,
            unread_from=start if committed is None else None,
        ))
    return rows


class SourceLogBounds:
    """The broker's log start and end of the source partitions faust's consumer cannot
    give offsets for: one the group never committed (its lag counts from the log start,
    where the group's consumers begin) or never fetched (a worker recovering its tables
    fetches no input, so its consumer has seen no log end). Without them such a
    partition exported no lag at all, and a worker stuck before its first commit looked
    caught up to the dashboards and alerts watching it.

    Refreshed by a timer of the app's (:func:`watch_source_log_bounds`); a partition
    the consumer can answer for is not asked about, so a running worker makes no query."""

    def __init__(self) -> None:
        self._bounds: dict[Any, tuple[int | None, int | None]] = {}

    def of(self, tp: Any) -> tuple[int | None, int | None]:
        return self._bounds.get(tp, (None, None))

    def _unknown(self, app: Any, topics: set[str]) -> list[Any]:
        consumer = app.consumer
        return sorted(
            tp for tp in consumer.assignment()
            if tp.topic in topics and (consumer._committed_offset.get(tp) is None or consumer.highwater(tp) is None)
        )

    async def refresh(self, app: Any, topics: set[str]) -> None:
        partitions = self._unknown(app, topics)
        if not partitions:
            self._bounds = {}
            return
        queries = app.broker_queries
        starts = await queries.beginning_offsets(partitions)
        ends = await queries.end_offsets(partitions)
        self._bounds = {tp: (starts.get(tp), ends.get(tp)) for tp in partitions}


def watch_source_log_bounds(app: Any, topics: set[str], ready: Any) -> SourceLogBounds:
    """A :class:`SourceLogBounds` kept fresh once ``ready()`` (the consumer has its
    assignment)."""
    bounds = SourceLogBounds()

    @app.timer(LOG_BOUNDS_REFRESH_SECONDS)
    async def refresh_source_log_bounds() -> None:
        if not ready():
            return
        try:
            await bounds.refresh(app, topics)
        except Exception as exc:  # the ops view waits for the next try; processing is not concerned
            log.warning("log offsets of unread source partitions unreadable: %r", exc)

    return bounds


def app_ready(app: Any, topic: str) -> bool:
    """Partitions of ``topic`` assigned and table recovery finished: the app is processing."""
    if app.rebalancing or app.in_recovery:
        return False
    owns = any(tp.topic == topic for tp in app.consumer.assignment())
    return owns and app.tables.recovery.completed.is_set()


class WorkerProbe:
    def __init__(self, app: Any, rules: Rules, telemetry: WorkerTelemetry, *, events_topic: str,
                 source_topics: list[str], partitions: int, customers: Any, clocks: Any, history: Any,
                 clock: str = "wall", processing_guarantee: str = "at_least_once") -> None:
        self.app = app
        self.rules = rules
        self.clock = clock
        self.processing_guarantee = processing_guarantee
        self.telemetry = telemetry
        self.events_topic = events_topic
        self.source_topics = set(source_topics) | {events_topic}
        self.partitions = partitions
        self.customers = customers
        self.clocks = clocks
        self.history = history
        self.started = False
        # tp -> the agents' own account of it (stream/worker/offsets.py), set by the app.
        self.progress_of: Any = lambda tp: {}
        # How many events the intake's event-time merge holds, set by the app.
        self.held_events: Any = lambda: 0
        # The broker's offsets of source partitions the consumer has none for, set by the app.
        self.log_bounds: SourceLogBounds | None = None

    def _assignment(self) -> set[Any]:
        if not self.started:
            return set()
        return {tp for tp in self.app.consumer.assignment() if tp.topic in self.source_topics}

    def ready(self) -> bool:
        return self.started and app_ready(self.app, self.events_topic)

    def snapshot(self) -> WorkerSnapshot:
        offsets = group_offsets(self.app, self.source_topics, self.log_bounds) if self.started else []
        partitions = sorted(o.partition for o in offsets if o.topic == self.events_topic)
        clocks: dict[int, int | None] = {}
        censuses: dict[int, Census] = {}
        rules: dict[int, RulesRecord] = {}
        backlogs: dict[int, int] = {}
        for partition in partitions:
            raw_rules = self.clocks.get(rules_key(partition))
            if raw_rules is not None:
                rules[partition] = RulesRecord.from_bytes(raw_rules)
            raw_clock = self.clocks.get(clock_key(partition))
            clocks[partition] = int(raw_clock) if raw_clock is not None else None
            raw_census = self.clocks.get(census_key(partition))
            if raw_census is not None:
                censuses[partition] = Census.from_bytes(raw_census)
            raw_backlog = self.clocks.get(backlog_key(partition))
            if raw_backlog is not None:
                backlogs[partition] = int(raw_backlog)
        memory = getattr(self.app, "segments_rocksdb_memory", None)
        return WorkerSnapshot(
            app_id=self.app.conf.id, group=self.app.conf.id, rules_version=self.rules.version,
            now_ms=time.time_ns() // 1_000_000, ready=self.ready(), offsets=offsets,
            clocks=clocks, censuses=censuses, telemetry=self.telemetry,
            held_events=self.held_events() if self.started else 0, rules=rules,
            clock=self.clock, processing_guarantee=self.processing_guarantee,
            rocksdb_memory_bytes=memory.usage_bytes() if memory is not None else None,
            rocksdb_memory_budget_bytes=memory.budget_bytes if memory is not None else None,
            timer_backlogs=backlogs,
        )

    def consumer_offsets(self) -> list[dict[str, Any]]:
        """Per source partition: what is committed, what the agents have finished and
        hold (what the next commit will be), and what faust still waits to see
        acknowledged (a rebalance waits for those)."""
        consumer = self.app.consumer
        rows = []
        for tp in sorted(self._assignment()):
            rows.append({
                "topic": tp.topic, "partition": tp.partition,
                "committed": consumer._committed_offset.get(tp),
                **self.progress_of(tp),
                "unacked_messages": sum(1 for message in list(consumer._unacked_messages) if message.tp == tp),
            })
        return rows

    def erased_at(self, customer_id: str) -> int | None:
        """When the customer was erased, if this worker holds their stub (and nothing since)."""
        raw = self.customers.get(customer_id.encode())
        state = CustomerState.from_bytes(raw) if raw is not None else None
        return state.erased_at if state is not None and state.erased else None

    def customer(self, customer_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """The customer's profile and stored change history, if this worker has them (an
        erased customer's it has not)."""
        key = customer_id.encode()
        raw = self.customers.get(key)
        if raw is None:
            return None
        state = CustomerState.from_bytes(raw)
        if state.erased:
            return None
        partition = partition_of(customer_id, self.partitions)
        # The customer's partition is open here: its state was just read from it.
        history = read_history(self.history.data._db_for_partition(partition), customer_id)
        # As of the partition clock, like `segments profile` and `segments snapshot`.
        raw_clock = self.clocks.get(clock_key(partition))
        now = max(int(raw_clock) if raw_clock is not None else 0, state.evaluated_at or 0)
        return profile(state, now, self.rules), history
