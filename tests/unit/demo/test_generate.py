"""The behaviour generator: deterministic, valid input, every behaviour and every tag."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
from kafka.partitioner.default import murmur2

from stream.demo.cdnow import DatasetMissing, cdnow_orders, time_ordered
from stream.demo.generate import generate_behaviour
from stream.events import Rejection, decode_event, parse_instant
from stream.processing.batch import run_batch
from stream.processing.merge import EventTimeMerger
from stream.rules import load_rules

UNTIL = parse_instant("1998-07-01T00:00:00Z")
TAGS = {
    "one_time_buyer", "repeat_purchaser", "lapsed", "high_spender", "low_spender",
    "coupon_lover", "overdue", "cart_abandoner", "prospect", "engaged_non_buyer",
}


@pytest.fixture(scope="module")
def orders() -> list[dict]:
    try:
        return time_ordered(list(cdnow_orders(limit_customers=200)))
    except DatasetMissing as error:  # pragma: no cover - the dev environment has it
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def events(orders: list[dict]) -> list[dict]:
    return generate_behaviour(orders)


def instant(event: dict) -> int:
    value = parse_instant(event["occurred_at"])
    assert value is not None
    return value


def originals_and_redeliveries(events: list[dict]) -> tuple[dict[str, int], list[int]]:
    """First position of every event_id, and the positions of the repeats."""
    first: dict[str, int] = {}
    repeats: list[int] = []
    for position, event in enumerate(events):
        if event["event_id"] in first:
            repeats.append(position)
        else:
            first[event["event_id"]] = position
    return first, repeats


def late_positions(events: list[dict]) -> list[int]:
    """Events older than an event of the same customer earlier in the file."""
    latest: dict[str, int] = {}
    late = []
    _, repeats = originals_and_redeliveries(events)
    repeated = set(repeats)
    for position, event in enumerate(events):
        if position in repeated:
            continue
        customer, at = event["customer_id"], instant(event)
        if at < latest.get(customer, at):
            late.append(position)
        latest[customer] = max(latest.get(customer, at), at)
    return late


def test_deterministic_for_a_seed(orders: list[dict], events: list[dict]) -> None:
    before = [dict(order) for order in orders]
    assert generate_behaviour(orders) == events
    assert orders == before, "the input orders must not be modified"
    assert generate_behaviour(orders, seed=8) != events


def test_every_event_is_valid_input(events: list[dict]) -> None:
    for event in events:
        decoded = decode_event(orjson.dumps(event))
        assert not isinstance(decoded, Rejection), (event, decoded)
        assert event["occurred_at"].endswith("Z")
        assert isinstance(event["customer_id"], str) and event["customer_id"]


def test_every_behaviour_occurs(orders: list[dict], events: list[dict]) -> None:
    assert len(events) > 3 * len(orders)
    kinds = Counter(
        (event["type"], event.get("status", "placed") if event["type"] == "order" else event.get("action"))
        for event in events
    )
    for kind in [("order", "placed"), ("order", "cancelled"), ("order", "refunded"), ("email_open", None)]:
        assert kinds[kind] > 0, kind
    for action in ["add", "update", "checkout_started", "remove", "cleared"]:
        assert kinds[("cart", action)] > 0, action
    placed = [event for event in events if event["type"] == "order" and event.get("status", "placed") == "placed"]
    assert sum(1 for order in placed if order["order_id"].startswith("cdnow-")) >= len(orders)
    discounted = [order for order in placed if order.get("discount_code") or order.get("discount_total", 0) > 0]
    assert 0.2 < len(discounted) / len(placed) < 0.4
    assert any(order.get("discount_total", 0) > 0 for order in discounted)
    assert any("discount_code" in order and order["discount_code"] is None for order in placed)
    refunds = [event for event in events if event.get("status") == "refunded"]
    assert any("refund_amount" in refund for refund in refunds), "partial refunds"
    assert any("refund_amount" not in refund for refund in refunds), "full refunds"
    cancelled = [event for event in events if event.get("status") == "cancelled"]
    placed_at = {order["order_id"]: instant(order) for order in placed}
    assert all(0 < instant(event) - placed_at[event["order_id"]] <= 86_400_000 for event in cancelled)
    opens = [event for event in events if event["type"] == "email_open"]
    privacy = sum(1 for event in opens if event.get("apple_privacy_open") is True)
    assert 0.08 < privacy / len(opens) < 0.25
    assert all(event.get("campaign_id") and event.get("message_id") for event in opens)
    assert any("timezone" in event for event in events)
    buyers = {event["customer_id"] for event in placed}
    non_buyers = {event["customer_id"] for event in events} - buyers
    assert non_buyers, "prospects: customers with carts or opens and no order"
    assert {event["type"] for event in events if event["customer_id"] in non_buyers} == {"cart", "email_open"}


def test_event_ids_are_unique_except_redeliveries(events: list[dict]) -> None:
    first, repeats = originals_and_redeliveries(events)
    assert repeats, "some redeliveries"
    assert 0.005 < len(repeats) / len(events) < 0.02
    for position in repeats:
        original = first[events[position]["event_id"]]
        assert events[position] == events[original]
        assert 0 < position - original <= 10, "shortly after the original"


def test_late_events_are_out_of_order_within_their_customer(events: list[dict]) -> None:
    late = late_positions(events)
    assert 0.005 < len(late) / len(events) < 0.02, len(late)
    distances = []
    for position in late:
        event = events[position]
        # Right after an event of the same customer and type (see the module docstring).
        before = events[position - 1]
        assert (before["customer_id"], before["type"]) == (event["customer_id"], event["type"])
        assert instant(before) > instant(event)
        # How far it moved: the first event of the file that is newer than it.
        moved_from = next(i for i, other in enumerate(events) if instant(other) > instant(event))
        distances.append(position - moved_from)
    assert max(distances) >= 100, "some are a few hundred positions late"


def test_the_intake_merge_reproduces_the_file_order() -> None:
    """Whatever the partition count, the worker's event-time merge of the input partitions
    (a topic per type, keyed by customer) releases the events in file order, so each
    customer's sequence in the stream is the batch's; redeliveries, which change
    nothing, may move but never ahead of their original. Erasure requests (a topic of
    their own) too."""
    events = generate_behaviour(
        time_ordered(list(cdnow_orders(limit_customers=100))), late_share=0.03, redelivery_share=0.03, erasure_share=0.1,
    )
    assert sum(event["type"] == "erasure" for event in events) > 3
    for partitions in (1, 4, 7):
        merger: EventTimeMerger[int] = EventTimeMerger()
        offsets: Counter = Counter()
        for position, event in enumerate(events):
            queue = (event["type"], (murmur2(event["customer_id"].encode()) & 0x7FFFFFFF) % partitions)
            merger.add(queue, offsets[queue], instant(event), position, arrived_at=position)
            offsets[queue] += 1
        released = merger.release(list(offsets), lambda queue: True)
        first, repeats = originals_and_redeliveries(events)
        repeated = set(repeats)
        assert [p for p in released if p not in repeated] == [p for p in range(len(events)) if p not in repeated]
        seen: set[str] = set()
        for position in released:
            event_id = events[position]["event_id"]
            assert position not in repeated or event_id in seen
            seen.add(event_id)


def test_erasures_come_on_top_of_the_same_events(orders: list[dict]) -> None:
    without = generate_behaviour(orders)
    events = generate_behaviour(orders, erasure_share=0.2)
    erasures = [event for event in events if event["type"] == "erasure"]
    assert [event for event in events if event["type"] != "erasure"] == without
    assert len({event["customer_id"] for event in erasures}) == len(erasures) > 5
    comeback = {event["customer_id"] for event in erasures if any(
        other["customer_id"] == event["customer_id"] and instant(other) > instant(event) for other in without
    )}
    assert 0 < len(comeback) < len(erasures)


def test_customer_share_limits_the_behaviour(orders: list[dict]) -> None:
    events = generate_behaviour(orders, customer_share=0.25, late_share=0, redelivery_share=0)
    customers = {order["customer_id"] for order in orders}
    with_behaviour = {event["customer_id"] for event in events if event["type"] != "order"} & customers
    assert 0.1 * len(customers) < len(with_behaviour) < 0.4 * len(customers)
    assert [event for event in events if event["event_id"].startswith("cdnow-")] != []
    assert generate_behaviour(orders, customer_share=0, late_share=0, redelivery_share=0) == orders


def test_the_batch_core_produces_every_tag(events: list[dict]) -> None:
    result = run_batch((orjson.dumps(event) for event in events), load_rules(None), UNTIL)
    assert not result.rejected
    entered = Counter(change.tag for change in result.changes if change.kind == "tag" and change.entered)
    assert TAGS <= set(entered), f"missing: {sorted(TAGS - set(entered))}"
    left = {change.tag for change in result.changes if change.kind == "tag" and not change.entered}
    assert {"prospect", "cart_abandoner", "one_time_buyer"} <= left
    # Some late event changed something, at the customer's latest instant (spec §7).
    occurred = {event["event_id"]: instant(event) for event in events}
    assert any(change.cause.kind == "event" and change.at > occurred[change.cause.event_id] for change in result.changes)
