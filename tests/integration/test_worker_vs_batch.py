"""The stream worker and the batch command agree customer by customer, change by change."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from stream.demo.cdnow import cdnow_orders, time_ordered, write_jsonl
from tests.integration.worker_harness import WorkerNamespace, batch_results

pytestmark = pytest.mark.integration


@pytest.fixture
def namespace(kafka_bootstrap: str, unique_name, tmp_path: Path):
    ns = WorkerNamespace(kafka_bootstrap, unique_name("seg"), tmp_path)
    yield ns
    ns.close()


def assert_stream_equals_batch(ns: WorkerNamespace, history: Path, until: str, tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot.jsonl"
    ns.cli("snapshot", "--out", str(snapshot))
    batch_profiles, batch_changes = batch_results(history, until, tmp_path)
    stream_profiles = snapshot.read_bytes().splitlines()
    assert len(stream_profiles) == len(batch_profiles)
    mismatched = [(s, b) for s, b in zip(stream_profiles, batch_profiles) if s != b]
    assert not mismatched, f"{len(mismatched)} profiles differ, first: {mismatched[0]}" + "\n" + ns.overtaken()
    stream_changes = ns.changes_by_customer()
    assert sum(map(len, stream_changes.values())) == sum(map(len, batch_changes.values()))
    differing = [customer for customer in batch_changes if stream_changes.get(customer) != batch_changes[customer]]
    assert not differing, f"{len(differing)} customers' changes differ, e.g. {differing[0]}"


def test_cdnow_sample_stream_equals_batch(namespace: WorkerNamespace, tmp_path: Path) -> None:
    history = tmp_path / "cdnow-sample.jsonl"
    write_jsonl(time_ordered(list(cdnow_orders(limit_customers=800))), history)
    namespace.start_worker()
    namespace.cli("replay", str(history), "--until", "1998-07-01", "--wait", "--timeout", "240")
    assert_stream_equals_batch(namespace, history, "1998-07-01", tmp_path)
    # `segments profile` reads one customer's state the way the snapshot reads them all.
    last = orjson.loads((tmp_path / "snapshot.jsonl").read_bytes().splitlines()[-1])
    shown = orjson.loads(namespace.cli("profile", last["customer_id"]).stdout)
    assert shown == last
    # Found in the app's own partitions whatever count a config file says.
    other_count = tmp_path / "other-partitions.toml"
    other_count.write_text(namespace.config.read_text().replace("partitions = 4", "partitions = 7"))
    customers = [orjson.loads(line) for line in (tmp_path / "snapshot.jsonl").read_bytes().splitlines()[-8:]]
    for customer in customers:
        looked_up = namespace.cli("profile", customer["customer_id"], config=other_count).stdout
        assert orjson.loads(looked_up) == customer
