"""Bad input goes to the dead-letter topic with its reason and original bytes; the worker
keeps going, and unkeyed events give the same results as keyed ones."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest

from stream.demo.cdnow import cdnow_orders, time_ordered
from tests.integration.worker_harness import WorkerNamespace, batch_results

pytestmark = pytest.mark.integration

BAD_LINES = {
    "malformed_json": b'{"event_id": "x1", "type": "order", ',
    "schema_violation": orjson.dumps({
        "event_id": "x2", "type": "order", "customer_id": "cdnow-00001", "occurred_at": "1997-03-01T12:00:00Z",
        "order_id": "o-x2", "total": -5, "currency": "USD",
    }),
    "unknown_type": orjson.dumps({"event_id": "x3", "type": "refund_request", "customer_id": "c", "occurred_at": "1997-03-01T12:00:00Z"}),
    "invalid_timestamp": orjson.dumps({
        "event_id": "x4", "type": "cart", "customer_id": "cdnow-00002", "occurred_at": "1997-02-30T12:00:00Z",
        "cart_id": "k", "action": "add", "cart_total": 10,
    }),
    "unknown_currency": orjson.dumps({
        "event_id": "x5", "type": "order", "customer_id": "cdnow-00003", "occurred_at": "1997-03-01T12:00:00Z",
        "order_id": "o-x5", "total": 12.5, "currency": "EUR",
    }),
    "oversized": orjson.dumps({
        "event_id": "x6", "type": "email_open", "customer_id": "cdnow-00004", "occurred_at": "1997-03-01T12:00:00Z",
        "padding": "z" * 300_000,
    }),
}
# Valid, but it says it occurred decades after it was published: taken in, it would move
# its partition's clock to 2090 and fire every customer's time-caused changes there.
FROM_THE_FUTURE = orjson.dumps({
    "event_id": "x7", "type": "order", "customer_id": "cdnow-00005", "occurred_at": "2090-01-01T00:00:00Z",
    "order_id": "o-x7", "total": 30, "currency": "USD",
})


def test_dead_letters_and_unkeyed_events(kafka_bootstrap: str, unique_name, tmp_path: Path) -> None:
    events = time_ordered(list(cdnow_orders(limit_customers=300)))
    lines = [orjson.dumps(event) for event in events]
    # Spread the bad lines through the history.
    bad_lines = [*BAD_LINES.values(), FROM_THE_FUTURE]
    for index, bad in enumerate(bad_lines):
        lines.insert((index + 1) * len(lines) // (len(bad_lines) + 1), bad)
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"\n".join(lines) + b"\n")

    ns = WorkerNamespace(kafka_bootstrap, unique_name("dlq"), tmp_path)
    try:
        ns.start_worker()
        ns.cli("replay", str(history), "--key", "none", "--until", "1998-07-01", "--wait", "--timeout", "240")
        assert ns.worker.poll() is None, "bad input must never stop the worker"

        dead = [orjson.loads(record.value) for record in ns.read_topic("dead_letter")]
        assert sorted(record["reason"] for record in dead) == sorted([*BAD_LINES, "invalid_timestamp"])
        (future,) = [record for record in dead if "after the message was published" in record["detail"]]
        assert base64.b64decode(future["original_b64"]) == FROM_THE_FUTURE
        dead.remove(future)
        by_reason = {record["reason"]: record for record in dead}
        for reason, original in BAD_LINES.items():
            record = by_reason[reason]
            assert base64.b64decode(record["original_b64"]) == original or record.get("original_truncated"), reason
            assert record["source"]["topic"] in (ns.topics["orders"], ns.topics["carts"], ns.topics["email_opens"])
            assert record["source"]["offset"] >= 0 and record["detail"]

        snapshot = tmp_path / "snapshot.jsonl"
        ns.cli("snapshot", "--out", str(snapshot))
        batch_profiles, batch_changes = batch_results(history, "1998-07-01", tmp_path)
        assert snapshot.read_bytes().splitlines() == batch_profiles, ns.overtaken()
        assert ns.changes_by_customer() == batch_changes
    finally:
        ns.close()
