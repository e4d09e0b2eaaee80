"""Live mode: with no further event, the wall clock alone makes a time-caused change fire."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from tests.integration.worker_harness import WorkerNamespace

pytestmark = pytest.mark.integration


def test_cart_abandoner_fires_from_the_wall_clock(kafka_bootstrap: str, unique_name, tmp_path: Path) -> None:
    ns = WorkerNamespace(kafka_bootstrap, unique_name("wall"), tmp_path, clock="wall")
    try:
        ns.start_worker()
        # A cart 4 hours minus 5 seconds old: it becomes abandoned 5 seconds from now.
        cart_at = datetime.now(timezone.utc) - timedelta(hours=4) + timedelta(seconds=5)
        cart = {
            "event_id": "cart-1", "type": "cart", "customer_id": "live-shopper",
            "occurred_at": cart_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "cart_id": "k1", "action": "add", "cart_total": 59.9,
        }
        history = tmp_path / "cart.jsonl"
        history.write_bytes(orjson.dumps(cart) + b"\n")
        ns.cli("replay", str(history))

        deadline = time.monotonic() + 60
        entered = []
        while time.monotonic() < deadline and not entered:
            changes = ns.changes_by_customer(idle=1.0).get("live-shopper", [])
            entered = [c for c in changes if c["kind"] == "tag" and c["tag"] == "cart_abandoner" and c["entered"]]
        assert entered, ns.log_tail()
        change = entered[0]
        assert change["cause"] == {"kind": "time"}
        expected_at = (cart_at + timedelta(hours=4)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert change["at"] == expected_at
    finally:
        ns.close()
