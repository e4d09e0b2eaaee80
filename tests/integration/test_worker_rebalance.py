"""Two workers of one app share the partitions; one joins mid-replay and leaves again
(two rebalances, state moving through the changelogs both ways): the results equal
`segments batch`, every change delivered; under exactly-once, each exactly once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from tests.integration.worker_harness import WorkerNamespace, batch_results, history_files, overview

pytestmark = pytest.mark.integration

UNTIL = "1998-07-01"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_worker_joining_and_leaving_mid_replay(kafka_bootstrap: str, unique_name, tmp_path: Path, guarantee: str) -> None:
    history, parts = history_files(tmp_path, 450, (1, 3), (2, 3))

    ns = WorkerNamespace(kafka_bootstrap, unique_name("rebalance"), tmp_path, guarantee=guarantee)
    try:
        ns.start_worker()
        ns.cli("replay", str(parts[0]), "--wait", "--timeout", "240")
        second, second_url = ns.start_extra_worker("second")
        ns.cli("replay", str(parts[1]), "--wait", "--timeout", "240")
        # Both took part: each owns some of the events topic's partitions.
        owned = [len(overview(url)["clocks"]) for url in (ns.web_url, second_url)]
        assert sorted(owned) == [2, 2], owned
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
        ns.cli("replay", str(parts[2]), "--until", UNTIL, "--wait", "--timeout", "240")

        snapshot = tmp_path / "snapshot.jsonl"
        ns.cli("snapshot", "--out", str(snapshot))
        batch_profiles, batch_changes = batch_results(history, UNTIL, tmp_path)
        assert snapshot.read_bytes().splitlines() == batch_profiles, ns.overtaken()
        assert ns.first_changes_by_customer() == batch_changes, "every change delivered, in order, across both rebalances"
        if guarantee == "exactly_once":
            committed = ns.changes_by_customer(isolation_level="read_committed")
            assert committed == batch_changes, "a read_committed consumer sees each change once, across both rebalances"
        # The census moved with the partitions: the worker left alone counts every customer.
        assert overview(ns.web_url)["customers"] == len(batch_profiles)
    finally:
        ns.close()


@pytest.mark.timeout(300)
def test_after_a_rebalance_a_partition_not_read_again_yet_still_holds_newer_events_back(
    kafka_bootstrap: str, unique_name, tmp_path: Path,
) -> None:
    """After a rebalance every input partition is read again from its committed offset,
    and one that has delivered nothing since may still have older events on their way.
    Its silence counts from the first delivery after the rebalance: a newer cart waits
    for an older order that reaches the broker a second later. (Counted from before the
    rebalance, as it was, the orders partition passed for idle at once and the cart went
    ahead: the order was processed as a late event.)"""
    customer = "rebalanced-shopper"
    first = [
        {"event_id": "o-1", "type": "order", "customer_id": customer, "occurred_at": "2020-01-01T12:00:00Z",
         "order_id": "order-1", "status": "placed", "total": 40.0, "currency": "USD"},
        {"event_id": "c-1", "type": "cart", "customer_id": customer, "occurred_at": "2020-01-02T12:00:00Z",
         "cart_id": "k1", "action": "add", "cart_total": 20.0},
    ]
    newer_cart = {"event_id": "c-2", "type": "cart", "customer_id": customer, "occurred_at": "2020-01-10T12:00:00Z",
                  "cart_id": "k2", "action": "add", "cart_total": 35.0}
    older_order = {"event_id": "o-2", "type": "order", "customer_id": customer, "occurred_at": "2020-01-05T12:00:00Z",
                   "order_id": "order-2", "status": "placed", "total": 25.0, "currency": "USD"}
    until = "2020-02-01"

    # One partition per topic, so the first worker owns them all again once the second
    # has left; a generous idle time, so only a silence counted from before the
    # rebalance (tens of seconds) can pass for idle.
    ns = WorkerNamespace(kafka_bootstrap, unique_name("regap"), tmp_path, partitions=1,
                         worker_settings="input_idle_seconds = 6.0")
    try:
        ns.start_worker()
        first_file = tmp_path / "first.jsonl"
        first_file.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in first))
        ns.cli("replay", str(first_file), "--wait", "--timeout", "120")
        second, _ = ns.start_extra_worker("second")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
        # Three flows resumed: the start, the second worker joining, and leaving.
        ns.wait_for_log("[^---Recovery]: Resuming flow", 120, count=3)

        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        try:
            producer.send(ns.topics["carts"], key=customer.encode(), value=orjson.dumps(newer_cart)).get(timeout=30)
            time.sleep(1.0)
            producer.send(ns.topics["orders"], key=customer.encode(), value=orjson.dumps(older_order)).get(timeout=30)
        finally:
            producer.close()
        empty = tmp_path / "nothing.jsonl"
        empty.write_bytes(b"")
        ns.cli("replay", str(empty), "--until", until, "--wait", "--timeout", "120")

        assert ns.overtaken() == "no event overtaken", ns.overtaken()
        history = tmp_path / "all.jsonl"
        history.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in [*first, older_order, newer_cart]))
        _, batch_changes = batch_results(history, until, tmp_path)
        assert ns.first_changes_by_customer() == batch_changes
    finally:
        ns.close()
