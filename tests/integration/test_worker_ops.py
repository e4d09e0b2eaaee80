"""The worker's ops endpoints against what it processed: /metrics and the dashboard API
agree with `segments batch` over the same history, and the probes and the bearer token
behave as load balancers and operators expect."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from stream.demo.cdnow import cdnow_orders, time_ordered, write_jsonl
from stream.demo.generate import generate_behaviour
from stream.ops.metrics import exported_metric_names
from stream.worker.settings import ROCKSDB_MEMORY_MIB
from stream.worker.tables import HISTORY_LIMIT, history_entry
from tests.integration.worker_harness import WorkerNamespace, batch_results

pytestmark = pytest.mark.integration

UNTIL = "1998-07-01"
BAD_RECORDS = [b'{"event_id": "bad-1", "type": "order", ', b'{"event_id": "bad-2", "type": "refund_request"}']


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def samples(metrics_text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """sample name -> {sorted label pairs -> value}"""
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def by_label(series: dict[tuple[tuple[str, str], ...], float], *names: str) -> dict[Any, float]:
    out = {}
    for labels, value in series.items():
        labels_dict = dict(labels)
        key = tuple(labels_dict[name] for name in names)
        out[key[0] if len(key) == 1 else key] = value
    return out


@pytest.fixture
def history(tmp_path: Path) -> Path:
    events = generate_behaviour(time_ordered(list(cdnow_orders(limit_customers=150))))
    path = tmp_path / "history.jsonl"
    write_jsonl(events, path)
    with path.open("ab") as out:
        for record in BAD_RECORDS:
            out.write(record + b"\n")
    return path


def test_metrics_and_api_agree_with_what_was_processed(kafka_bootstrap: str, unique_name, tmp_path: Path, history: Path) -> None:
    ns = WorkerNamespace(kafka_bootstrap, unique_name("ops"), tmp_path)
    try:
        ns.start_worker()
        status, body = get(f"{ns.web_url}/healthz")
        assert status == 200 and orjson.loads(body)["status"] == "ok"
        ns.cli("replay", str(history), "--until", UNTIL, "--wait", "--timeout", "240")
        status, body = get(f"{ns.web_url}/readyz")
        assert (status, orjson.loads(body)["status"]) == (200, "ready")

        batch_profiles, batch_changes = batch_results(history, UNTIL, tmp_path)
        profiles = [orjson.loads(line) for line in batch_profiles]
        changes = [change for per_customer in batch_changes.values() for change in per_customer]
        inputs = [orjson.loads(line) for line in history.read_bytes().splitlines() if line not in BAD_RECORDS]

        status, body = get(f"{ns.web_url}/metrics")
        assert status == 200
        metrics = samples(body.decode())
        assert set(metrics) <= exported_metric_names()
        # The shared RocksDB memory holds the write buffers charged to it, within its budget.
        (budget,) = metrics["segments_rocksdb_memory_budget_bytes"].values()
        (held,) = metrics["segments_rocksdb_memory_bytes"].values()
        assert budget == ROCKSDB_MEMORY_MIB * 2**20 and 0 < held <= budget
        # Every input event is counted once by type (redeliveries included: they are
        # accepted and then recognised as duplicates by the core).
        assert by_label(metrics["segments_events_total"], "type") == Counter(event["type"] for event in inputs)
        assert sum(metrics["segments_dead_letters_total"].values()) == len(BAD_RECORDS)
        transitions = Counter((c["from"] or "none", c["to"] or "none") for c in changes if c["kind"] == "segment")
        assert by_label(metrics["segments_segment_changes_total"], "from", "to") == transitions, ns.overtaken()
        tag_changes = Counter((c["tag"], "entered" if c["entered"] else "left") for c in changes if c["kind"] == "tag")
        assert by_label(metrics["segments_tag_changes_total"], "tag", "direction") == tag_changes
        segments = Counter(profile["segment"] or "none" for profile in profiles)
        assert {k: v for k, v in by_label(metrics["segments_customers"], "segment").items() if v} == segments
        tags = Counter(tag for profile in profiles for tag in profile["tags"])
        assert {k: v for k, v in by_label(metrics["segments_customers_tagged"], "tag").items() if v} == tags
        # After --wait everything is consumed and committed.
        lags = metrics["kafka_consumergroup_lag"]
        assert lags and set(lags.values()) == {0.0}
        topics = {dict(labels)["topic"] for labels in lags}
        assert {ns.topics["orders"], ns.topics["events"]} <= topics
        assert metrics["segments_assigned_partitions"][()] == 4
        assert metrics["segments_ready"][()] == 1
        assert len(metrics["segments_event_time_lag_seconds"]) == 4
        assert metrics["segments_batch_duration_seconds_count"][()] > 0
        assert metrics["segments_intake_held_events"][()] == 0  # all processed: nothing held

        status, body = get(f"{ns.web_url}/api/overview")
        overview = orjson.loads(body)
        assert overview["customers"] == len(profiles)
        assert {k: v for k, v in overview["segments"].items() if v} == segments
        assert overview["changes_total"] == len(changes)

        # The lookup gives the same profile as the batch command, and the change history.
        customer = max(batch_changes, key=lambda c: len(batch_changes[c]))
        status, body = get(f"{ns.web_url}/api/customers/{customer}")
        assert status == 200
        found = orjson.loads(body)
        assert found["profile"] == next(p for p in profiles if p["customer_id"] == customer)
        expected_history = [history_entry(change) for change in batch_changes[customer][-HISTORY_LIMIT:][::-1]]
        assert found["history"] == expected_history
        assert len(expected_history) > 1
        status, body = get(f"{ns.web_url}/api/customers/no-such-customer")
        assert status == 404

        status, body = get(f"{ns.web_url}/api/changes?limit=5")
        recent = orjson.loads(body)["changes"]
        assert len(recent) == 5 and all(change["change_id"] for change in recent)

        # The agents' own account of the events partitions: all finished and committed.
        status, body = get(f"{ns.web_url}/api/debug/offsets")
        rows = [row for row in orjson.loads(body)["partitions"] if row["topic"] == ns.topics["events"]]
        assert len(rows) == 4
        for row in rows:
            assert row["unfinished"] == 0 and row["unacked_messages"] == 0, row
            assert row["next_to_commit"] == row["committed"], row
        # The input partitions: nothing held, every record taken up to the commit (the
        # --until tick left a record on every one of them).
        inputs = [row for row in orjson.loads(body)["partitions"] if row["topic"] == ns.topics["orders"]]
        assert len(inputs) == 4
        for row in inputs:
            assert row["merge"]["held_events"] == 0 and row["merge"]["first_unread"] == row["committed"], row
    finally:
        ns.close()


def test_bearer_token_protects_metrics_and_the_api(kafka_bootstrap: str, unique_name, tmp_path: Path) -> None:
    token = "s3cret-token"
    ns = WorkerNamespace(kafka_bootstrap, unique_name("token"), tmp_path, worker_settings=f'web_token = "{token}"')
    try:
        ns.start_worker()
        assert get(f"{ns.web_url}/healthz")[0] == 200
        assert get(f"{ns.web_url}/dashboard/")[0] == 200  # the page asks for the token itself
        for path in ("/metrics", "/api/overview", "/api/changes", "/api/customers/x"):
            assert get(f"{ns.web_url}{path}")[0] == 401, path
            assert get(f"{ns.web_url}{path}", token="wrong")[0] == 401, path
        assert get(f"{ns.web_url}/metrics", token=token)[0] == 200
    finally:
        ns.close()
