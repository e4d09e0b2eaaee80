"""A tick that makes more customers due than a batch may re-evaluate
(``timers_per_batch``): the rest fire in the next batches, or as they are loaded, with
the same changes as if every tick had fired in full."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from stream.core.events import CartEvent, ErasureRequest, OrderEvent
from stream.core.profile import profile
from stream.core.timeutil import parse_rfc3339_ms
from stream.processing import MemoryStore, PartitionProcessor
from stream.rules import load_rules
from tests.support.random_events import behaviour_event

RULES = load_rules(None)
DAY = 86_400_000
START = parse_rfc3339_ms("2024-01-01T09:00:00Z")


def order(number: int, customer: str, at: int) -> OrderEvent:
    return OrderEvent(f"e{number}", customer, at, f"o{number}", "placed", 20_000_000, False, None)


def stream_with_pauses(seed: int, customers: int = 50, events: int = 400) -> list:
    """Events of a few dozen customers, and now and then a tick months ahead (a worker
    back from an outage, a replay's --until), after which events go on, some of them late."""
    rng = random.Random(seed)
    clock = START
    made: list = []
    for number in range(events):
        roll = rng.random()
        if roll < 0.03:
            clock += rng.randrange(30, 200) * DAY
            made.append(clock)  # a tick
            continue
        clock += rng.randrange(0, DAY)
        at = clock - rng.randrange(0, 3 * DAY) if rng.random() < 0.1 else clock  # late now and then
        customer = f"c{rng.randrange(customers):03d}"
        if roll < 0.99:
            made.append(behaviour_event(rng, number, customer, at, roll))
        else:
            made.append(ErasureRequest(f"e{number}", customer, at))
    made.append(clock + 400 * DAY)
    return made


def run(items: list, timers_per_batch: int | None, batch: int = 6) -> tuple[MemoryStore, list, list[int]]:
    """``items`` (events, and ticks as ints) in batches of ``batch``, a processor each as
    the worker makes them; then empty batches (the worker's nudges) until no due timer is
    left. Returns the store, the changes in emission order, and how many customers each
    batch re-evaluated through their timers."""
    store = MemoryStore()
    changes: list = []
    fired: list[int] = []

    def one_batch(chunk: list) -> PartitionProcessor:
        processor = PartitionProcessor(RULES, store, timers_per_batch=timers_per_batch)
        timer_fired = 0
        for item in chunk:
            step = processor.on_tick(item) if isinstance(item, int) else processor.on_event(item)
            changes.extend(step.changes)
            timer_fired += len(step.touched) - (0 if isinstance(item, int) else 1)
        step = processor.catch_up()
        changes.extend(step.changes)
        fired.append(timer_fired + len(step.touched))
        return processor

    for start in range(0, len(items), batch):
        processor = one_batch(items[start:start + batch])
    for _ in range(10_000):
        if processor.first_due_left() is None:
            return store, changes, fired
        processor = one_batch([])
    raise AssertionError("due timers never caught up")


def by_customer(changes: list) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for change in changes:
        grouped[change.customer_id].append(change.change_id)
    return dict(grouped)


def test_a_batch_re_evaluates_at_most_timers_per_batch_due_customers() -> None:
    items = [order(number, f"c{number:03d}", START + number) for number in range(30)] + [START + 100 * DAY]
    store, changes, fired = run(items, timers_per_batch=7, batch=31)
    reference_store, reference, _ = run(items, timers_per_batch=None, batch=31)
    assert max(fired) == 7
    assert sum(fired) == 30  # each customer once
    assert by_customer(changes) == by_customer(reference)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("timers_per_batch", [1, 3])
def test_the_changes_are_those_of_ticks_fired_in_full(seed: int, timers_per_batch: int) -> None:
    items = stream_with_pauses(seed)
    reference_store, reference, reference_fired = run(items, timers_per_batch=None)
    store, changes, fired = run(items, timers_per_batch)
    assert max(reference_fired) > timers_per_batch  # the limit did cut some tick short
    assert max(fired) <= timers_per_batch + 6  # plus the batch's own events' customers
    # The same changes, each customer's in the same order, and the same customers at the end.
    assert by_customer(changes) == by_customer(reference)
    clock = store.clock()
    assert clock == reference_store.clock()
    assert {c: profile(s, clock, RULES) for c, s in store.states.items() if not s.erased} == {
        c: profile(s, clock, RULES) for c, s in reference_store.states.items() if not s.erased
    }


def test_an_event_for_a_customer_still_due_comes_after_its_time_caused_changes() -> None:
    store = MemoryStore()
    first = PartitionProcessor(RULES, store, timers_per_batch=1)
    first.on_event(order(1, "alice", START))
    first.on_event(order(2, "bob", START + 1))  # due a millisecond after alice
    tick = START + 100 * DAY
    fired = first.on_tick(tick)
    assert set(fired.touched) == {"alice"}
    assert first.first_due_left() is not None
    # A batch that may fire no timer at all: bob is brought to the clock as he is loaded.
    second = PartitionProcessor(RULES, store, timers_per_batch=0)
    alice = second.on_event(CartEvent("k1", "alice", tick, "cart-a", "add", 5_000_000))
    bob = second.on_event(CartEvent("k2", "bob", tick, "cart-b", "add", 5_000_000))
    assert [change.cause.kind for change in alice.changes] == ["event"] * len(alice.changes)
    kinds = [change.cause.kind for change in bob.changes]
    assert kinds[0] == "time" and kinds == sorted(kinds, key=lambda kind: kind != "time")
    assert [c.at for c in bob.changes if c.cause.kind == "time"] == sorted(
        c.at for c in fired.changes if c.cause.kind == "time")
    assert second.first_due_left() is None


OTHER = RULES.model_validate({"scores": {"recency": {"thresholds": [10, 60, 120, 300]}}, "window_days": 365})
THIRD = RULES.model_validate({"scores": {"recency": {"thresholds": [20, 45, 150, 300]}}, "window_days": 365})


@pytest.mark.parametrize("changes_of_rules", [[OTHER], [OTHER, THIRD]])
def test_a_change_of_rules_while_customers_are_still_due_under_the_old_ones(changes_of_rules: list) -> None:
    """The worker restarted with new rules (once, or twice before the first change's
    sweep is done) while a tick's due customers wait for later batches: they are first
    brought to the clock under the rules they are stamped with."""
    def run_changes(timers_per_batch: int | None) -> dict[str, list[str]]:
        store = MemoryStore()
        made: list = []
        first = PartitionProcessor(RULES, store, timers_per_batch=timers_per_batch)
        for number in range(12):
            made += first.on_event(order(number, f"c{number:02d}", START + number * 3_600_000)).changes
        made += first.on_tick(START + 100 * DAY).changes
        for rules in changes_of_rules:  # each restart: a batch that fires nothing and sweeps nothing
            made += PartitionProcessor(rules, store, timers_per_batch=0).sweep_rules(0).changes
        while True:  # then the worker's batches, a few customers at a time
            processor = PartitionProcessor(changes_of_rules[-1], store, timers_per_batch=timers_per_batch or 10_000)
            made += processor.catch_up().changes
            made += processor.sweep_rules(2).changes
            if processor.first_due_left() is None and processor.rules_record().swept:
                return by_customer(made)

    reference = run_changes(None)
    assert any(len(ids) > 3 for ids in reference.values())  # time-caused changes under the old rules
    assert run_changes(2) == reference
