"""Live mode: with no further event, the wall clock alone makes a time-caused change fire."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from tests.integration.worker_harness import WorkerNamespace, overview

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_cart_abandoner_fires_from_the_wall_clock(kafka_bootstrap: str, unique_name, tmp_path: Path, guarantee: str) -> None:
    ns = WorkerNamespace(kafka_bootstrap, unique_name("wall"), tmp_path, clock="wall", guarantee=guarantee)
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
            changes = ns.changes_by_customer(idle=1.0, isolation_level="read_committed").get("live-shopper", [])
            entered = [c for c in changes if c["kind"] == "tag" and c["tag"] == "cart_abandoner" and c["entered"]]
        assert entered, ns.log_tail()
        change = entered[0]
        assert change["cause"] == {"kind": "time"}
        expected_at = (cart_at + timedelta(hours=4)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert change["at"] == expected_at
    finally:
        ns.close()


def test_under_exactly_once_ticks_reach_partitions_no_event_comes_to(kafka_bootstrap: str, unique_name, tmp_path: Path) -> None:
    """Ticks are sent outside the worker's transactions: in one, a tick stayed invisible
    to the worker's read_committed consumer until an event came for its partition (a
    transaction commits only with offsets that moved), so a quiet partition's clock, and
    its customers' time-caused changes, stood still."""
    ns = WorkerNamespace(kafka_bootstrap, unique_name("quiet"), tmp_path, clock="wall", guarantee="exactly_once")
    try:
        ns.start_worker()
        deadline = time.monotonic() + 30
        clocks: list = []
        while time.monotonic() < deadline:
            clocks = [entry["clock"] for entry in overview(ns.web_url)["clocks"]]
            if len(clocks) == 4 and all(clocks):
                break
            time.sleep(0.5)
        assert len(clocks) == 4 and all(clocks), (clocks, ns.log_tail())
    finally:
        ns.close()
