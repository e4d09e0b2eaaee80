from stream.ops import api
from stream.processing.rules_change import RulesBetween, RulesRecord
from stream.ops.telemetry import RECENT_CHANGES, WorkerTelemetry
from tests.unit.ops.test_metrics import snapshot


def test_overview_lists_every_segment_and_transition() -> None:
    telemetry = WorkerTelemetry()
    telemetry.record_changes([{"kind": "segment", "from": "Champions", "to": "At Risk"}] * 3)
    document = api.overview(snapshot(telemetry))
    assert document["segments"]["Champions"] == 2 and document["segments"]["Lost"] == 0
    assert document["transitions"] == [{"from": "Champions", "to": "At Risk", "count": 3}]
    assert document["partitions"][0] == {"topic": "orders", "partition": 0, "committed": 5, "end": 9, "lag": 4}
    assert document["clocks"][0]["event_time_lag_seconds"] == 6.0
    assert document["clocks"][1] == {"partition": 1, "clock": None, "event_time_lag_seconds": None}


def test_recent_changes_newest_first_and_bounded() -> None:
    telemetry = WorkerTelemetry()
    telemetry.record_changes({"kind": "tag", "tag": "prospect", "entered": True, "n": n} for n in range(RECENT_CHANGES + 10))
    recent = api.recent_changes(snapshot(telemetry), 3)["changes"]
    assert [change["n"] for change in recent] == [RECENT_CHANGES + 9, RECENT_CHANGES + 8, RECENT_CHANGES + 7]
    assert len(telemetry.recent_changes) == RECENT_CHANGES


def test_series_sample_keys_lag_by_topic_partition() -> None:
    sample = api.series_sample(snapshot())
    assert sample["lag"] == {"orders:0": 4}
    assert sample["at"] == "1970-01-01T00:00:10.000Z"


def test_overview_and_metrics_show_each_partitions_rules_and_a_sweep_under_way() -> None:
    from stream.ops.metrics import render_metrics
    from tests.unit.ops.test_metrics import parse

    settled = RulesRecord("r1-new", "UTC", 730, 30)
    sweeping = RulesRecord("r1-new", "UTC", 730, 30, since=4_000, previous="r1-old", swept_to="c9", swept=False)
    shot = snapshot(rules={0: sweeping, 1: settled})
    clocks = api.overview(shot)["clocks"]
    assert clocks[0] == {
        "partition": 0, "clock": "1970-01-01T00:00:04.000Z", "event_time_lag_seconds": 6.0, "rules_version": "r1-new",
        "rules_since": "1970-01-01T00:00:04.000Z", "rules_previous": "r1-old", "rules_swept": False,
    }
    assert clocks[1]["rules_version"] == "r1-new" and "rules_since" not in clocks[1]
    pending = parse(render_metrics(shot))["segments_rules_sweep_pending"]
    assert pending == {(("partition", "0"),): 1, (("partition", "1"),): 0}


def test_overview_lists_the_rules_customers_not_moved_yet_pass_through() -> None:
    between = RulesBetween("r1-mid", "r1-old", 2_000, "rules_schema = 1\n")
    chained = RulesRecord("r1-new", "UTC", 730, 30, since=4_000, previous="r1-mid", swept=False, between=(between,))
    clock = api.overview(snapshot(rules={0: chained}))["clocks"][0]
    assert clock["rules_between"] == [{"version": "r1-mid", "since": "1970-01-01T00:00:02.000Z"}]
