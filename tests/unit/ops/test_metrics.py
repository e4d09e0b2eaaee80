from collections import Counter
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from stream.ops.metrics import exported_metric_names, render_metrics
from stream.ops.snapshot import PartitionOffsets, WorkerSnapshot
from stream.ops.telemetry import WorkerTelemetry
from stream.processing.census import Census
from stream.rules import SEGMENT_NAMES


def snapshot(telemetry: WorkerTelemetry | None = None, **overrides) -> WorkerSnapshot:
    values = dict(
        app_id="segments", group="segments", rules_version="r1-test", now_ms=10_000, ready=True,
        offsets=[PartitionOffsets("orders", 0, 5, 9), PartitionOffsets("segments-events", 0, None, 3)],
        clocks={0: 4_000, 1: None},
        censuses={0: Census(3, Counter({"Champions": 2, "none": 1}), Counter({"prospect": 1}), 7)},
        telemetry=telemetry or WorkerTelemetry(),
    )
    values.update(overrides)
    return WorkerSnapshot(**values)


def parse(text: bytes) -> dict[str, dict[tuple, float]]:
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_consumer_lag_uses_kafka_exporter_names() -> None:
    samples = parse(render_metrics(snapshot()))
    lag = samples["kafka_consumergroup_lag"]
    assert lag == {(("consumergroup", "segments"), ("partition", "0"), ("topic", "orders")): 4}
    # No committed offset yet: no lag or current offset is invented.
    assert len(samples["kafka_consumergroup_current_offset"]) == 1
    assert samples["kafka_topic_partition_current_offset"][(("partition", "0"), ("topic", "segments-events"))] == 3


def test_a_partition_never_committed_lags_from_its_log_start() -> None:
    offsets = [PartitionOffsets("carts", 2, None, 9, unread_from=4)]
    samples = parse(render_metrics(snapshot(offsets=offsets)))
    assert samples["kafka_consumergroup_lag"] == {(("consumergroup", "segments"), ("partition", "2"), ("topic", "carts")): 5}
    assert "kafka_consumergroup_current_offset" not in samples  # still nothing committed


def test_event_time_lag_and_census() -> None:
    samples = parse(render_metrics(snapshot()))
    assert samples["segments_event_time_lag_seconds"] == {(("partition", "0"),): 6.0}
    customers = {labels[0][1]: value for labels, value in samples["segments_customers"].items()}
    assert customers["Champions"] == 2 and customers["none"] == 1
    assert set(customers) == {*SEGMENT_NAMES, "none"}
    assert samples["segments_pending_timers"] == {(("partition", "0"),): 7}


def test_worker_info_names_clock_guarantee_and_rules() -> None:
    samples = parse(render_metrics(snapshot(clock="event", processing_guarantee="exactly_once")))
    assert samples["segments_worker_info"] == {
        (("clock", "event"), ("processing_guarantee", "exactly_once"), ("rules_version", "r1-test")): 1,
    }


def test_counters_follow_telemetry() -> None:
    telemetry = WorkerTelemetry()
    telemetry.record_event("order")
    telemetry.record_event("order")
    telemetry.record_dead_letter("malformed_json")
    telemetry.record_changes([
        {"kind": "segment", "from": None, "to": "New Customers"},
        {"kind": "tag", "tag": "prospect", "entered": False},
    ])
    telemetry.record_batch(0.03, ticks=2)
    samples = parse(render_metrics(snapshot(telemetry)))
    assert samples["segments_events_total"] == {(("type", "order"),): 2}
    assert samples["segments_dead_letters_total"] == {(("reason", "malformed_json"),): 1}
    assert samples["segments_segment_changes_total"] == {(("from", "none"), ("to", "New Customers")): 1}
    assert samples["segments_tag_changes_total"] == {(("direction", "left"), ("tag", "prospect")): 1}
    assert samples["segments_clock_ticks_total"] == {(): 2}
    assert samples["segments_batch_duration_seconds_count"] == {(): 1}
    assert samples["segments_batch_duration_seconds_bucket"][(("le", "0.025"),)] == 0
    assert samples["segments_batch_duration_seconds_bucket"][(("le", "0.05"),)] == 1


def test_every_family_is_exposed_before_its_first_sample() -> None:
    text = render_metrics(snapshot(offsets=[], clocks={}, censuses={}, ready=False)).decode()
    declared = {line.split()[2].removesuffix("_total") for line in text.splitlines() if line.startswith("# TYPE")}
    families = {name.removesuffix("_total") for name in exported_metric_names() if not name.endswith(("_bucket", "_sum", "_count"))}
    assert families <= declared
    assert "segments_ready 0.0" in text


def test_the_events_the_intake_holds_are_a_gauge() -> None:
    assert parse(render_metrics(snapshot(held_events=17)))["segments_intake_held_events"] == {(): 17}
    assert parse(render_metrics(snapshot()))["segments_intake_held_events"] == {(): 0}


def _own_process_series(text: bytes) -> None:
    samples = parse(text)
    own_rss = int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) * 1024
    # This process's own memory, not a constant: within a factor of two of /proc's.
    assert own_rss / 2 < samples["process_resident_memory_bytes"][()] < own_rss * 2
    assert samples["process_cpu_seconds_total"][()] > 0
    assert samples["process_start_time_seconds"][()] > 1.7e9
    assert samples["python_info"]


def test_the_worker_and_the_sender_expose_their_process_memory_cpu_and_start() -> None:
    from stream.sender.metrics import SenderMetrics

    _own_process_series(render_metrics(snapshot()))
    _own_process_series(SenderMetrics().render())


def test_the_shared_rocksdb_memory_and_its_budget_are_gauges() -> None:
    samples = parse(render_metrics(snapshot(rocksdb_memory_bytes=12_345, rocksdb_memory_budget_bytes=256 * 2**20)))
    assert samples["segments_rocksdb_memory_bytes"] == {(): 12_345}
    assert samples["segments_rocksdb_memory_budget_bytes"] == {(): 256 * 2**20}
    # rocksdb_memory_mib = 0: no shared budget, the families stay without samples.
    assert "segments_rocksdb_memory_bytes" not in parse(render_metrics(snapshot()))


def test_the_process_start_time_holds_still_between_scrapes(monkeypatch) -> None:
    """ProcessCollector reads the boot time when it is made: one made per scrape could
    move the start time with the clock, and SegmentsProcessRestarting would count
    restarts that never were."""
    from itertools import count

    from prometheus_client.process_collector import ProcessCollector

    boot_times = count(1_700_000_000)
    monkeypatch.setattr(ProcessCollector, "_boot_time", lambda self: float(next(boot_times)))
    starts = {parse(render_metrics(snapshot()))["process_start_time_seconds"][()] for _ in range(3)}
    assert len(starts) == 1


def test_due_timers_behind_say_how_far_the_earliest_waiting_customer_is_behind_its_clock() -> None:
    shot = snapshot(clocks={0: 9_000, 1: 4_000, 2: None}, timer_backlogs={0: 1_500})
    behind = parse(render_metrics(shot))["segments_due_timers_behind_seconds"]
    assert behind == {(("partition", "0"),): 7.5, (("partition", "1"),): 0, (("partition", "2"),): 0}
