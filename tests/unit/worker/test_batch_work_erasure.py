"""An erasure request through the customer agent's batch work on real RocksDB: what goes
out (changes, a profile tombstone) and what is left in the tables."""

from __future__ import annotations

from pathlib import Path

import orjson

from stream.core.events import MICROS_PER_UNIT, CartEvent, ErasureRequest, OrderEvent
from stream.core.state import CustomerState
from stream.core.timeutil import parse_rfc3339_ms
from stream.events import validator
from stream.events.internal import encode_event
from stream.rules import DEFAULT_RULES_PATH, load_rules
from stream.worker.batch_work import process_records
from stream.worker.tables import read_history
from tests.support.rocksdb_tables import RocksTables

RULES = load_rules(DEFAULT_RULES_PATH)


def order(customer: str, when: str, number: int, total: float = 300.0) -> OrderEvent:
    return OrderEvent(
        event_id=f"{customer}-e{number}", customer_id=customer, occurred_at=parse_rfc3339_ms(when),
        order_id=f"{customer}-o{number}", status="placed", total_micros=int(total * MICROS_PER_UNIT),
        discounted=False, refund_micros=None,
    )


def batch(tables: RocksTables, events: list) -> tuple:
    store = tables.store(0)
    output = process_records([encode_event(event) for event in events], store, RULES, 0, 1000)
    store.flush()
    return output, store


def timers_of(tables: RocksTables, customer: str) -> list[bytes]:
    db = tables.db("timers", 0)
    return [key for key in db.keys() if key.endswith(customer.encode())]


def test_an_erased_customer_leaves_a_tombstone_and_a_stub_and_the_census_and_timers_follow(tmp_path: Path) -> None:
    tables = RocksTables(tmp_path, 1)
    try:
        history = [order(customer, f"2024-01-{day:02d}T10:00:00Z", day) for customer in ("alice", "bob") for day in (1, 8, 15)]
        batch(tables, history)
        assert timers_of(tables, "alice") and read_history(tables.db("recent_changes", 0), "alice")
        census_before = tables.store(0).census()

        request = ErasureRequest("erase-1", "alice", parse_rfc3339_ms("2024-02-01T09:00:00Z"))
        late_cart = CartEvent("alice-late", "alice", parse_rfc3339_ms("2024-01-20T10:00:00Z"), "k1", "add", 5 * MICROS_PER_UNIT)
        output, _ = batch(tables, [request, late_cart])

        # The tombstone, once: the late cart publishes nothing.
        assert [value for key, value in output.profiles if key == b"alice"] == [None]
        # Her time-caused changes up to the erasure's instant first, then the erasure's.
        alice = [orjson.loads(value) for key, value in output.changes if key == b"alice"]
        causes = [record["cause"]["kind"] for record in alice]
        first = causes.index("erasure")
        assert set(causes[:first]) <= {"time"} and set(causes[first:]) == {"erasure"}
        assert [record["kind"] for record in alice[first:]][-1] == "erasure" and len(alice[first:]) > 1
        for record in alice:
            assert list(validator("segment_change").iter_errors(record)) == []
        assert read_history(tables.db("recent_changes", 0), "alice") == []
        assert read_history(tables.db("recent_changes", 0), "bob")
        assert timers_of(tables, "alice") == []
        stub = CustomerState.from_bytes(tables.db("customers", 0)[b"alice"])
        assert stub.erased and stub.orders == {} and stub.segment is None

        census = tables.store(0).census()
        assert census.customers == census_before.customers - 1
        recounted = tables.store(0)._recount()
        assert (census.customers, +census.segments, +census.tags, census.timers) == (
            recounted.customers, +recounted.segments, +recounted.tags, recounted.timers,
        )

        comeback = order("alice", "2024-03-01T10:00:00Z", 99, total=20.0)
        output, _ = batch(tables, [comeback])
        assert [value is None for key, value in output.profiles if key == b"alice"] == [False]
        assert tables.store(0).census().customers == census_before.customers
        assert [entry["change_id"] for entry in read_history(tables.db("recent_changes", 0), "alice")] == [
            record["change_id"] for record in output.change_records if record["customer_id"] == "alice"
        ]
    finally:
        tables.close()
