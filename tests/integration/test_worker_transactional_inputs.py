"""Input topics written by transactional producers (a Kafka Streams or Flink job with
exactly-once upstream): each transaction leaves a commit or abort marker on the
partition, an offset that holds no event, and an aborted transaction's records are
never delivered either (the worker reads committed records only, under either
guarantee). The worker must still see such a
partition as read to its end, or the events of other partitions stay held behind it for
as long as nothing new arrives on it. (Before the fix, `replay --wait` timed out here:
the cart stayed held.)"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from tests.integration.worker_harness import WorkerNamespace, batch_results

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _order(event_id: str, customer: str, day: str, total: float) -> dict:
    return {"event_id": event_id, "type": "order", "customer_id": customer, "occurred_at": f"{day}T12:00:00Z",
            "order_id": f"order-{event_id}", "status": "placed", "total": total, "currency": "USD"}


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_a_partition_ending_in_transaction_markers_holds_nothing_back(
    kafka_bootstrap: str, unique_name, tmp_path: Path, guarantee: str,
) -> None:
    first = _order("o-0", "early", "2020-01-01", 10.0)
    in_transaction = [_order("o-1", "tx-buyer", "2020-01-02", 30.0), _order("o-2", "tx-buyer", "2020-01-03", 40.0)]
    cart = {"event_id": "c-1", "type": "cart", "customer_id": "shopper", "occurred_at": "2020-01-04T12:00:00Z",
            "cart_id": "k1", "action": "add", "cart_total": 20.0}
    # Never delivered: the worker reads committed records only, whatever its guarantee.
    aborted = [_order("o-3", "tx-buyer", "2020-01-03", 500.0)]
    ns = WorkerNamespace(kafka_bootstrap, unique_name("txin"), tmp_path, partitions=1, guarantee=guarantee)
    try:
        ns.start_worker()
        first_file = tmp_path / "first.jsonl"
        first_file.write_bytes(orjson.dumps(first) + b"\n")
        ns.cli("replay", str(first_file), "--wait", "--timeout", "120")

        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"{ns.prefix}-upstream")
        try:
            producer.init_transactions()
            producer.begin_transaction()
            for event in in_transaction:
                producer.send(ns.topics["orders"], key=event["customer_id"].encode(), value=orjson.dumps(event))
            producer.commit_transaction()
            producer.begin_transaction()
            for event in aborted:
                producer.send(ns.topics["orders"], key=event["customer_id"].encode(), value=orjson.dumps(event))
            producer.flush()
            producer.abort_transaction()
        finally:
            producer.close()
        plain = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        try:
            plain.send(ns.topics["carts"], key=b"shopper", value=orjson.dumps(cart)).get(timeout=30)
        finally:
            plain.close()

        empty = tmp_path / "nothing.jsonl"
        empty.write_bytes(b"")
        ns.cli("replay", str(empty), "--wait", "--timeout", "60")
        ns.cli("replay", str(empty), "--until", "2020-02-01", "--wait", "--timeout", "60")

        history = tmp_path / "all.jsonl"
        history.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in [first, *in_transaction, cart]))
        _, batch_changes = batch_results(history, "2020-02-01", tmp_path)
        assert ns.overtaken() == "no event overtaken", ns.overtaken()
        assert ns.first_changes_by_customer() == batch_changes
    finally:
        ns.close()
