"""CDNOW plus generated behaviour (discounts, cancellations, refunds, carts, email opens,
redeliveries, late events, erasure requests) through the real worker equals `segments
batch`, customer by customer, change by change."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from stream.demo.cdnow import cdnow_orders, time_ordered, write_jsonl
from stream.demo.generate import generate_behaviour
from tests.integration.worker_harness import WorkerNamespace, assert_erased_customers_have_no_profile, batch_results

pytestmark = pytest.mark.integration

UNTIL = "1998-07-01"


@pytest.fixture
def namespace(kafka_bootstrap: str, unique_name, tmp_path: Path):
    ns = WorkerNamespace(kafka_bootstrap, unique_name("gen"), tmp_path)
    yield ns
    ns.close()


@pytest.fixture(scope="module")
def generated_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    events = generate_behaviour(time_ordered(list(cdnow_orders(limit_customers=400))), erasure_share=0.05)
    path = tmp_path_factory.mktemp("generated") / "cdnow-generated.jsonl"
    write_jsonl(events, path)
    return path


def _customer_events(history: Path, customer: str) -> list[str]:
    lines = []
    for line in history.read_bytes().splitlines():
        event = orjson.loads(line)
        if event["customer_id"] == customer:
            lines.append(line.decode())
    return lines


def assert_stream_equals_batch(ns: WorkerNamespace, history: Path, tmp_path: Path, until: str = UNTIL) -> None:
    snapshot = tmp_path / "snapshot.jsonl"
    ns.cli("snapshot", "--out", str(snapshot))
    batch_profiles, batch_changes = batch_results(history, until, tmp_path)
    stream_profiles = snapshot.read_bytes().splitlines()
    stream_changes = ns.changes_by_customer()
    differing = sorted(
        customer for customer in set(batch_changes) | set(stream_changes)
        if stream_changes.get(customer) != batch_changes.get(customer)
    )
    if differing:
        customer = differing[0]
        detail = "\n".join(
            ["events:", *_customer_events(history, customer),
             "stream changes:", *map(str, stream_changes.get(customer, [])),
             "batch changes:", *map(str, batch_changes.get(customer, []))]
        )
        pytest.fail(f"{len(differing)} customers' changes differ: {differing[:10]}; first, {customer}:\n{detail}")
    assert len(stream_profiles) == len(batch_profiles)
    mismatched = [(s, b) for s, b in zip(stream_profiles, batch_profiles) if s != b]
    assert not mismatched, f"{len(mismatched)} profiles differ, first: {mismatched[0]}" + "\n" + ns.overtaken()
    # The history exercised what it is meant to: every tag, and not only orders.
    tags = {change["tag"] for changes in batch_changes.values() for change in changes if change["kind"] == "tag"}
    assert {"coupon_lover", "cart_abandoner", "prospect", "engaged_non_buyer"} <= tags
    assert_erased_customers_have_no_profile(ns, batch_changes)


def test_generated_behaviour_stream_equals_batch(namespace: WorkerNamespace, generated_history: Path, tmp_path: Path) -> None:
    """The history is in the input topics before the worker starts (a backfill): the
    intake's event-time merge then sees every partition's true end and releases the
    events in file order, late events and all (see stream.demo.generate)."""
    namespace.cli("replay", str(generated_history))
    namespace.start_worker()
    nothing_more = tmp_path / "empty.jsonl"
    nothing_more.write_bytes(b"")
    namespace.cli("replay", str(nothing_more), "--until", UNTIL, "--wait", "--timeout", "240")
    assert_stream_equals_batch(namespace, generated_history, tmp_path)


def test_generated_behaviour_live_replay_stream_equals_batch(
    namespace: WorkerNamespace, generated_history: Path, tmp_path: Path
) -> None:
    """Published while the worker runs: the intake must merge the input partitions in
    event-time order even while their ends keep moving (confirmed with the broker)."""
    namespace.start_worker()
    namespace.cli("replay", str(generated_history), "--until", UNTIL, "--wait", "--timeout", "240")
    assert_stream_equals_batch(namespace, generated_history, tmp_path)


def test_due_customers_beyond_a_batch_fire_in_the_next_batches_as_batch_computes(
    kafka_bootstrap: str, unique_name, generated_history: Path, tmp_path: Path
) -> None:
    """With a few due customers per batch at most (timers_per_batch), the clock's moves
    through the history and the final tick a year ahead leave customers due for later
    batches, while events for some of them keep coming: the same changes as batch's."""
    ns = WorkerNamespace(kafka_bootstrap, unique_name("backlog"), tmp_path, worker_settings="timers_per_batch = 3")
    try:
        ns.start_worker()
        until = "1999-07-01"
        ns.cli("replay", str(generated_history), "--until", until, "--wait", "--timeout", "300")
        assert "more customers are due than a batch re-evaluates" in ns.worker_log.read_text()
        assert_stream_equals_batch(ns, generated_history, tmp_path, until)
    finally:
        ns.close()
