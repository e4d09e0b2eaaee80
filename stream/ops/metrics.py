"""``/metrics``: a worker snapshot in the Prometheus text format (prometheus_client).

Consumer-lag series use kafka_exporter's names and labels, so dashboards and alerts
written for kafka_exporter work unchanged; the rest are ``segments_*``. Every family is
always exposed, even before its first sample, so a Grafana panel never points at a
name that "does not exist yet". A worker reports the partitions it owns; the whole
group's view is ``segments lag``.
"""

from __future__ import annotations

from typing import Any, Iterator, NamedTuple

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from stream.ops.snapshot import WorkerSnapshot
from stream.processing.census import NO_SEGMENT
from stream.rules import SEGMENT_NAMES, TAG_NAMES


class MetricSpec(NamedTuple):
    name: str
    kind: str  # "gauge" | "counter" | "histogram"
    help: str
    labels: tuple[str, ...] = ()


SPECS = [
    MetricSpec("kafka_consumergroup_current_offset", "gauge", "Committed offset of the consumer group, per owned partition.", ("consumergroup", "topic", "partition")),
    MetricSpec("kafka_consumergroup_lag", "gauge", "Log-end offset minus committed offset, per owned partition.", ("consumergroup", "topic", "partition")),
    MetricSpec("kafka_topic_partition_current_offset", "gauge", "Log-end offset as last seen by the worker's consumer.", ("topic", "partition")),
    MetricSpec("segments_event_time_lag_seconds", "gauge", "Wall clock minus the partition clock (event time).", ("partition",)),
    MetricSpec("segments_events", "counter", "Input events accepted, by type.", ("type",)),
    MetricSpec("segments_dead_letters", "counter", "Input records sent to the dead-letter topic, by reason.", ("reason",)),
    MetricSpec("segments_segment_changes", "counter", "Segment changes emitted, by from and to segment.", ("from", "to")),
    MetricSpec("segments_tag_changes", "counter", "Tag changes emitted, by tag and direction.", ("tag", "direction")),
    MetricSpec("segments_customers", "gauge", "Customers per segment ('none': no counted order), owned partitions.", ("segment",)),
    MetricSpec("segments_customers_tagged", "gauge", "Customers holding each tag, owned partitions.", ("tag",)),
    MetricSpec("segments_pending_timers", "gauge", "Customers with a scheduled time-caused re-evaluation.", ("partition",)),
    MetricSpec("segments_clock_ticks", "counter", "Clock ticks processed."),
    MetricSpec("segments_assigned_partitions", "gauge", "Partitions of the events topic this worker owns."),
    MetricSpec("segments_ready", "gauge", "1 when partitions are assigned and table recovery is done."),
    MetricSpec("segments_batch_duration_seconds", "histogram", "Time to process one batch of events and ticks, outputs and state delivered."),
]

_SAMPLE_SUFFIXES = {"gauge": ("",), "counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def exported_metric_names() -> set[str]:
    """Every sample name a worker's /metrics can emit."""
    return {spec.name + suffix for spec in SPECS for suffix in _SAMPLE_SUFFIXES[spec.kind]}


def _family(spec: MetricSpec) -> Metric:
    kinds: dict[str, Any] = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily, "histogram": HistogramMetricFamily}
    return kinds[spec.kind](spec.name, spec.help, labels=spec.labels)


def _families(snapshot: WorkerSnapshot) -> Iterator[Metric]:
    families = {spec.name: _family(spec) for spec in SPECS}

    def add(name: str, labels: list[str], value: float) -> None:
        families[name].add_metric(labels, value)

    telemetry = snapshot.telemetry
    for offsets in snapshot.offsets:
        partition = str(offsets.partition)
        if offsets.committed is not None:
            add("kafka_consumergroup_current_offset", [snapshot.group, offsets.topic, partition], offsets.committed)
        if offsets.lag is not None:
            add("kafka_consumergroup_lag", [snapshot.group, offsets.topic, partition], offsets.lag)
        if offsets.end is not None:
            add("kafka_topic_partition_current_offset", [offsets.topic, partition], offsets.end)
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
    census = snapshot.census
    for segment in (*SEGMENT_NAMES, NO_SEGMENT):
        add("segments_customers", [segment], census.segments.get(segment, 0))
    for tag in TAG_NAMES:
        add("segments_customers_tagged", [tag], census.tags.get(tag, 0))
    for partition, partition_census in sorted(snapshot.censuses.items()):
        add("segments_pending_timers", [str(partition)], partition_census.timers)
    add("segments_clock_ticks", [], telemetry.ticks)
    add("segments_assigned_partitions", [], len(snapshot.clocks))
    add("segments_ready", [], 1 if snapshot.ready else 0)
    histogram = telemetry.batch_duration
    buckets = [("+Inf" if bound == float("inf") else repr(bound), count) for bound, count in zip(histogram.bounds, histogram.counts)]
    families["segments_batch_duration_seconds"].add_metric([], buckets, histogram.total)
    yield from families.values()


class _SnapshotCollector:
    def __init__(self, snapshot: WorkerSnapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        return _families(self._snapshot)


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render_metrics(snapshot: WorkerSnapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot))
    return generate_latest(registry)
