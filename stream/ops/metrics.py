"""``/metrics``: a worker snapshot in the Prometheus text format (prometheus_client).

Consumer-lag series use kafka_exporter's names and labels, so dashboards and alerts
written for kafka_exporter work unchanged; the rest are ``segments_*``. Every family is
always exposed, even before its first sample, so a Grafana panel never points at a
name that "does not exist yet". A worker reports the partitions it owns; the whole
group's view is ``segments lag``.

Every endpoint (the worker's, the playbooks app's, the sender's) also carries
prometheus_client's standard process and Python series (``process_resident_memory_bytes``,
``process_cpu_seconds_total``, ``process_start_time_seconds``, ``process_open_fds``,
``python_gc_*``, ``python_info``), as any Prometheus exporter does, so memory, CPU and
restarts are watched with the queries operators already have.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterator, NamedTuple

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from stream.ops.snapshot import PartitionOffsets, PlaybooksSnapshot, WorkerSnapshot
from stream.processing.census import NO_SEGMENT
from stream.rules import SEGMENT_NAMES, TAG_NAMES


class MetricSpec(NamedTuple):
    name: str
    kind: str  # "gauge" | "counter" | "histogram"
    help: str
    labels: tuple[str, ...] = ()


LAG_SPECS = [
    MetricSpec("kafka_consumergroup_current_offset", "gauge", "Committed offset of the consumer group, per owned partition.", ("consumergroup", "topic", "partition")),
    MetricSpec("kafka_consumergroup_lag", "gauge", "Log-end offset minus committed offset, per owned partition.", ("consumergroup", "topic", "partition")),
    MetricSpec("kafka_topic_partition_current_offset", "gauge", "Log-end offset as last seen by the worker's consumer.", ("topic", "partition")),
]
READY_SPEC = MetricSpec("segments_ready", "gauge", "1 when partitions are assigned and table recovery is done.")

SPECS = [
    *LAG_SPECS,
    MetricSpec("segments_event_time_lag_seconds", "gauge", "Wall clock minus the partition clock (event time).", ("partition",)),
    MetricSpec("segments_events", "counter", "Input events accepted, by type.", ("type",)),
    MetricSpec("segments_dead_letters", "counter", "Input records sent to the dead-letter topic, by reason.", ("reason",)),
    MetricSpec("segments_segment_changes", "counter", "Segment changes emitted, by from and to segment.", ("from", "to")),
    MetricSpec("segments_tag_changes", "counter", "Tag changes emitted, by tag and direction.", ("tag", "direction")),
    MetricSpec("segments_erasures", "counter", "Customers erased on request (records of kind erasure emitted)."),
    MetricSpec("segments_customers", "gauge", "Customers per segment ('none': no counted order), owned partitions.", ("segment",)),
    MetricSpec("segments_customers_tagged", "gauge", "Customers holding each tag, owned partitions.", ("tag",)),
    MetricSpec("segments_pending_timers", "gauge", "Customers with a scheduled time-caused re-evaluation.", ("partition",)),
    MetricSpec("segments_due_timers_behind_seconds", "gauge", "How far behind the partition clock the earliest due customer not re-evaluated yet is: more came due at once than a batch takes (timers_per_batch); 0 when none.", ("partition",)),
    MetricSpec("segments_rules_sweep_pending", "gauge", "1 while a change of rules is still moving the partition's stored customers to the new rules.", ("partition",)),
    MetricSpec("segments_clock_ticks", "counter", "Clock ticks processed."),
    MetricSpec("segments_intake_held_events", "gauge", "Valid input events the intake holds for its event-time merge, waiting for input partitions to catch up."),
    MetricSpec("segments_assigned_partitions", "gauge", "Partitions of the events topic this worker owns."),
    MetricSpec("segments_rocksdb_memory_bytes", "gauge", "Bytes the process's shared RocksDB block cache holds, write buffers charged to it included (rocksdb_memory_mib)."),
    MetricSpec("segments_rocksdb_memory_budget_bytes", "gauge", "The shared RocksDB memory budget (rocksdb_memory_mib) in bytes."),
    MetricSpec("segments_worker_info", "gauge", "Always 1: how the worker runs (its clock, processing guarantee and rules version), to join on.", ("clock", "processing_guarantee", "rules_version")),
    READY_SPEC,
    MetricSpec("segments_batch_duration_seconds", "histogram", "Time to process one batch of events and ticks, outputs and state delivered."),
]

# The playbooks app's /metrics (`segments playbooks`).
PLAYBOOK_SPECS = [
    *LAG_SPECS,
    MetricSpec("segments_actions_emitted", "counter", "Actions scheduled for delivery (holdout excluded), by playbook, action and channel.", ("playbook", "action", "channel")),
    MetricSpec("segments_actions_skipped", "counter", "Actions recorded as skipped, by reason.", ("reason",)),
    MetricSpec("segments_actions_holdout", "counter", "Actions emitted for holdout customers (never sent), by playbook.", ("playbook",)),
    MetricSpec("segments_playbook_changes", "counter", "Segment-change records read, by outcome (decided, duplicate, malformed, erasure, unknown_kind).", ("outcome",)),
    READY_SPEC,
]

_SAMPLE_SUFFIXES = {"gauge": ("",), "counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


@functools.cache
def _process_collectors() -> tuple[Any, ...]:
    # Made once per process: ProcessCollector reads the boot time when it is made, and
    # process_start_time_seconds adds to it, so a collector made per scrape could move
    # the start time by a second with the clock and fire SegmentsProcessRestarting.
    made_in = CollectorRegistry(auto_describe=False)  # each registers itself somewhere; reused from here
    return ProcessCollector(registry=made_in), PlatformCollector(registry=made_in), GCCollector(registry=made_in)


def register_process_collectors(registry: CollectorRegistry) -> None:
    """The standard process_* and python_* series of this process, in ``registry``."""
    for collector in _process_collectors():
        registry.register(collector)


def _sample_names(exposition: bytes) -> set[str]:
    from prometheus_client.parser import text_string_to_metric_families

    return {sample.name for family in text_string_to_metric_families(exposition.decode()) for sample in family.samples}


@functools.cache
def process_metric_names() -> frozenset[str]:
    """The sample names of :func:`register_process_collectors`' series."""
    registry = CollectorRegistry(auto_describe=False)
    register_process_collectors(registry)
    return frozenset(_sample_names(generate_latest(registry)))


def exported_metric_names(specs: list[MetricSpec] | None = None) -> set[str]:
    """Every sample name a /metrics can emit: the worker's by default."""
    own = {spec.name + suffix for spec in (SPECS if specs is None else specs) for suffix in _SAMPLE_SUFFIXES[spec.kind]}
    return own | process_metric_names()


def engine_metric_names() -> set[str]:
    """Every sample name the engine's three /metrics endpoints can emit: the worker's, the
    playbooks app's and the sender's (what dashboards and alerts may query)."""
    from stream.sender.metrics import SenderMetrics

    return exported_metric_names() | exported_metric_names(PLAYBOOK_SPECS) | _sample_names(SenderMetrics().render())


def _family(spec: MetricSpec) -> Metric:
    kinds: dict[str, Any] = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily, "histogram": HistogramMetricFamily}
    return kinds[spec.kind](spec.name, spec.help, labels=spec.labels)


def _add_offsets(families: dict[str, Metric], group: str, offsets: list[PartitionOffsets]) -> None:
    for row in offsets:
        partition = str(row.partition)
        if row.committed is not None:
            families["kafka_consumergroup_current_offset"].add_metric([group, row.topic, partition], row.committed)
        if row.lag is not None:
            families["kafka_consumergroup_lag"].add_metric([group, row.topic, partition], row.lag)
        if row.end is not None:
            families["kafka_topic_partition_current_offset"].add_metric([row.topic, partition], row.end)


def _families(snapshot: WorkerSnapshot) -> Iterator[Metric]:
    families = {spec.name: _family(spec) for spec in SPECS}

    def add(name: str, labels: list[str], value: float) -> None:
        families[name].add_metric(labels, value)

    telemetry = snapshot.telemetry
    _add_offsets(families, snapshot.group, snapshot.offsets)
    for partition in sorted(snapshot.clocks):
        lag = snapshot.event_time_lag_seconds(partition)
        if lag is not None:
            add("segments_event_time_lag_seconds", [str(partition)], lag)
    for event_type, count in sorted(telemetry.events_by_type.items()):
        add("segments_events", [event_type], count)
    for reason, count in sorted(telemetry.dead_letters_by_reason.items()):
        add("segments_dead_letters", [reason], count)
    for (from_segment, to_segment), count in sorted(telemetry.transitions.items(), key=str):
        add("segments_segment_changes", [from_segment or NO_SEGMENT, to_segment or NO_SEGMENT], count)
    for (tag, direction), count in sorted(telemetry.tag_changes.items()):
        add("segments_tag_changes", [tag, direction], count)
    add("segments_erasures", [], telemetry.erasures)
    census = snapshot.census
    for segment in (*SEGMENT_NAMES, NO_SEGMENT):
        add("segments_customers", [segment], census.segments.get(segment, 0))
    for tag in TAG_NAMES:
        add("segments_customers_tagged", [tag], census.tags.get(tag, 0))
    for partition, partition_census in sorted(snapshot.censuses.items()):
        add("segments_pending_timers", [str(partition)], partition_census.timers)
    for partition in sorted(snapshot.clocks):
        add("segments_due_timers_behind_seconds", [str(partition)], snapshot.timers_behind_seconds(partition))
    for partition, record in sorted(snapshot.rules.items()):
        add("segments_rules_sweep_pending", [str(partition)], 0 if record.swept else 1)
    add("segments_clock_ticks", [], telemetry.ticks)
    add("segments_intake_held_events", [], snapshot.held_events)
    add("segments_assigned_partitions", [], len(snapshot.clocks))
    if snapshot.rocksdb_memory_bytes is not None:
        add("segments_rocksdb_memory_bytes", [], snapshot.rocksdb_memory_bytes)
    if snapshot.rocksdb_memory_budget_bytes is not None:
        add("segments_rocksdb_memory_budget_bytes", [], snapshot.rocksdb_memory_budget_bytes)
    add("segments_worker_info", [snapshot.clock, snapshot.processing_guarantee, snapshot.rules_version], 1)
    add("segments_ready", [], 1 if snapshot.ready else 0)
    histogram = telemetry.batch_duration
    buckets = [("+Inf" if bound == float("inf") else repr(bound), count) for bound, count in zip(histogram.bounds, histogram.counts)]
    families["segments_batch_duration_seconds"].add_metric([], buckets, histogram.total)
    yield from families.values()


def _playbook_families(snapshot: PlaybooksSnapshot) -> Iterator[Metric]:
    families = {spec.name: _family(spec) for spec in PLAYBOOK_SPECS}
    telemetry = snapshot.telemetry
    _add_offsets(families, snapshot.group, snapshot.offsets)
    for (playbook, action, channel), count in sorted(telemetry.emitted.items()):
        families["segments_actions_emitted"].add_metric([playbook, action, channel], count)
    for reason, count in sorted(telemetry.skipped_by_reason.items()):
        families["segments_actions_skipped"].add_metric([reason], count)
    for playbook, count in sorted(telemetry.holdout_by_playbook.items()):
        families["segments_actions_holdout"].add_metric([playbook], count)
    for outcome, count in sorted(telemetry.changes_by_outcome.items()):
        families["segments_playbook_changes"].add_metric([outcome], count)
    families["segments_ready"].add_metric([], 1 if snapshot.ready else 0)
    yield from families.values()


class _Collector:
    def __init__(self, families: Callable[[], Iterator[Metric]]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return self._families()


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _render(families: Callable[[], Iterator[Metric]]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(families))
    register_process_collectors(registry)
    return generate_latest(registry)


def render_metrics(snapshot: WorkerSnapshot) -> bytes:
    return _render(lambda: _families(snapshot))


def render_playbook_metrics(snapshot: PlaybooksSnapshot) -> bytes:
    return _render(lambda: _playbook_families(snapshot))
