"""A change of rules over a partition: its record, the adoption on load, the sweep."""

from __future__ import annotations

import random
from dataclasses import replace

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.core.events import CartEvent, OrderEvent
from stream.core.params import params_for
from stream.core.profile import profile
from stream.core.timeutil import parse_rfc3339_ms
from stream.processing import MemoryStore, PartitionProcessor
from stream.processing.rules_change import (
    RulesChangeError, RulesRecord, changeover, record_for, rules_from_text, stamp_of,
)
from stream.rules import Rules
from tests.support.random_events import behaviour_event

DAY = 86_400_000
OLD = Rules()
NEW = Rules.model_validate({"scores": {"recency": {"thresholds": [10, 60, 120, 300]}}, "window_days": 365})
START = parse_rfc3339_ms("2023-01-01T09:00:00Z")


def history(seed: int, customers: int = 60, events: int = 500) -> list:
    rng = random.Random(seed)
    clock = START
    made: list = []
    for number in range(events):
        clock += rng.randrange(0, 2 * DAY)
        customer = f"c{rng.randrange(customers):03d}"
        made.append(behaviour_event(rng, number, customer, clock, rng.random()))
    return made


def identities(changes) -> list[str]:
    return sorted(change.change_id for change in changes)


def test_the_record_of_a_partition_follows_the_rules_it_runs_under() -> None:
    first = changeover(None, OLD, None)
    assert replace(first, rules_text=None) == record_for(OLD) and first.since is None and first.swept
    assert rules_from_text(first.rules_text) == OLD  # kept for the next change
    assert changeover(first, OLD, 123) is first
    # A record written before records kept their rules gets them.
    assert changeover(record_for(OLD), OLD, 123) == first
    changed = changeover(first, NEW, 5_000)
    assert (changed.version, changed.previous, changed.since, changed.swept, changed.swept_to) == (
        NEW.version, OLD.version, 5_000, False, None,
    )
    assert RulesRecord.from_bytes(changed.to_bytes()) == changed
    # A partition that never processed anything has nobody to sweep.
    assert changeover(first, NEW, None).swept


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        (Rules(timezone="Europe/Berlin"), "timezone"),
        (Rules(window_days=900), "window_days"),
        (Rules.model_validate({"tags": {"prospect": {"window_days": 60}}}), "tags.prospect.window_days"),
    ],
)
def test_rules_the_stored_states_cannot_be_carried_over_to_are_refused_by_field(rules: Rules, field: str) -> None:
    with pytest.raises(RulesChangeError, match=field.replace(".", r"\.")):
        changeover(record_for(OLD), rules, 5_000)


THIRD = Rules.model_validate({"scores": {"recency": {"thresholds": [20, 60, 120, 300]}}, "window_days": 365})
FOURTH = Rules.model_validate({"scores": {"recency": {"thresholds": [5, 45, 100, 250]}}, "window_days": 365})


def test_a_change_of_rules_while_the_previous_one_is_being_swept_keeps_the_rules_in_between() -> None:
    under_way = changeover(record_for(OLD), NEW, 5_000)
    assert under_way.rules_text is not None and under_way.between == ()
    assert changeover(under_way, NEW, 6_000) is under_way  # the same rules go on with it
    chained = changeover(replace(under_way, swept_to="c042"), THIRD, 6_000)
    assert (chained.version, chained.previous, chained.since, chained.swept_to, chained.swept) == (
        THIRD.version, NEW.version, 6_000, None, False,
    )
    [between] = chained.between
    assert (between.version, between.previous, between.since, between.rules) == (NEW.version, OLD.version, 5_000, NEW)
    assert RulesRecord.from_bytes(chained.to_bytes()) == chained
    # The rules before the changes, for customers still due under them (timers_per_batch).
    kept = changeover(changeover(changeover(None, OLD, None), NEW, 5_000), THIRD, 6_000)
    assert rules_from_text(kept.previous_text) == OLD
    assert kept.own_rules(stamp_of(OLD, 0)) == OLD and kept.own_rules(stamp_of(NEW, 1)) == NEW
    assert kept.own_rules(stamp_of(THIRD, 2)) is None
    # Finished, the record keeps only its own rules.
    done = chained.finished("c099")
    assert (done.rules_text, done.between, done.previous_text, done.swept) == (chained.rules_text, (), None, True)
    assert "between" not in orjson.loads(done.to_bytes()) and RulesRecord.from_bytes(done.to_bytes()) == done
    after_done = changeover(done, NEW, 7_000)
    assert (after_done.previous, after_done.between) == (THIRD.version, ())


def test_going_back_mid_sweep_to_rules_customers_are_being_moved_away_from_is_a_change_like_any_other() -> None:
    base = Rules(window_days=365)
    under_way = changeover(record_for(base), NEW, 5_000)
    chained = changeover(under_way, THIRD, 6_000)
    assert (under_way.generation, chained.generation) == (1, 2)
    for back in (base, NEW):  # the rules before the first change, and the rules in between
        rolled_back = changeover(chained, back, 7_000)
        assert (rolled_back.version, rolled_back.generation, rolled_back.since) == (back.version, 3, 7_000)
        assert [(step.version, step.generation) for step in rolled_back.between] == [(NEW.version, 1), (THIRD.version, 2)]
        # Moved back, a customer is stamped otherwise than one never moved away.
        stamps = {stamp_of(base, 0), *(step.stamp for step in rolled_back.between), stamp_of(back, 3)}
        assert len(stamps) == 4
        assert RulesRecord.from_bytes(rolled_back.to_bytes()) == rolled_back
    # A record written before generations existed reads as generation 0, whose stamp is
    # the rules' own tag (what the states it describes carry).
    old_style = orjson.loads(under_way.to_bytes())
    del old_style["generation"]
    assert RulesRecord.from_bytes(orjson.dumps(old_style)).generation == 0
    assert stamp_of(NEW, 0) == params_for(NEW).version_tag


def test_a_record_written_before_records_kept_their_rules_refuses_a_change_mid_sweep() -> None:
    old_style = replace(changeover(record_for(OLD), NEW, 5_000), rules_text=None)
    with pytest.raises(RulesChangeError, match=f"a change of rules is under way; run the worker with {NEW.version}"):
        changeover(RulesRecord.from_bytes(old_style.to_bytes()), THIRD, 6_000)


def run_phases(phases: list[tuple[Rules, list, int, int | None]]) -> tuple[MemoryStore, list]:
    """Each phase: its rules, its events, the tick that ends it, and how many customers
    its sweep moves after each batch of 7 events (None: all of them, then the events;
    0: none, and the phase ends with its sweep unfinished)."""
    store = MemoryStore()
    changes: list = []
    for rules, events, tick, sweep_limit in phases:
        position = 0
        if sweep_limit is None:
            changes.extend(PartitionProcessor(rules, store).sweep_rules(len(store.states) + 1).changes)
        while True:
            processor = PartitionProcessor(rules, store)  # one per batch, as in the worker
            for event in events[position:position + 7]:
                changes.extend(processor.on_event(event).changes)
            position += 7
            if sweep_limit:
                changes.extend(processor.sweep_rules(sweep_limit).changes)
            if position >= len(events) and (not sweep_limit or processor.rules_record().swept):
                break
        changes.extend(PartitionProcessor(rules, store).on_tick(tick).changes)
    return store, changes


@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize("shape", ["second change mid-sweep", "third change mid-sweep"])
def test_customers_a_sweep_had_not_reached_pass_through_the_rules_in_between(seed: int, shape: str) -> None:
    events = history(seed)
    # Few events under each rules in between: most customers are not loaded meanwhile.
    first_cut = len(events) // 2
    cuts = [first_cut, first_cut + 10] if shape == "second change mid-sweep" else [first_cut, first_cut + 10, first_cut + 20]
    sinces = [events[cut - 1].occurred_at + DAY for cut in cuts]
    rules_in_turn = [OLD, NEW, THIRD] if len(cuts) == 2 else [OLD, NEW, FOURTH, THIRD]
    bounds = [0, *cuts, len(events)]
    until = events[-1].occurred_at + 40 * DAY
    ends = [*sinces, until]

    def phases(between_sweep: int | None, last_sweep: int | None):
        return [
            (rules, events[bounds[index]:bounds[index + 1]], ends[index],
             None if index == 0 else (last_sweep if index == len(cuts) else between_sweep))
            for index, rules in enumerate(rules_in_turn)
        ]

    final = rules_in_turn[-1]
    since_new = sinces[0]
    # As segments batch --rules-change computes it: each sweep done at its instant.
    reference_store, reference = run_phases(phases(None, None))
    # The sweeps of the rules in between got nowhere before the next change; then the
    # last change is swept in chunks between the events.
    store, changes = run_phases(phases(0, 5))
    assert identities(changes) == identities(reference)
    assert [profile(store.states[c], until, final) for c in sorted(store.states)] == [
        profile(reference_store.states[c], until, final) for c in sorted(reference_store.states)
    ]
    # Customers with no event under NEW passed through its rules late, with changes at
    # its instant.
    loaded_under_new = {event.customer_id for event in events[cuts[0]:cuts[1]]}
    assert {c.customer_id for c in changes if c.cause.kind == "rules" and c.at == since_new} - loaded_under_new
    assert PartitionProcessor(final, store).rules_record().between == ()


@pytest.mark.parametrize("seed", [3, 4])
def test_a_rollback_mid_sweep_tells_customers_moved_back_from_customers_never_moved_away(seed: int) -> None:
    """NEW swept in full, then THIRD not swept at all, then back to NEW: a customer still
    stamped with NEW's first change must pass through THIRD before it is moved back."""
    events = history(seed)
    cuts = [len(events) // 2, len(events) // 2 + 10, len(events) // 2 + 20]
    sinces = [events[cut - 1].occurred_at + DAY for cut in cuts]
    bounds = [0, *cuts, len(events)]
    until = events[-1].occurred_at + 40 * DAY
    in_turn = [OLD, NEW, THIRD, NEW]

    def phases(sweeps: list[int | None]):
        return [(rules, events[bounds[i]:bounds[i + 1]], [*sinces, until][i], sweeps[i]) for i, rules in enumerate(in_turn)]

    reference_store, reference = run_phases(phases([None, None, None, None]))
    store, changes = run_phases(phases([None, None, 0, 5]))
    # THIRD's own changes reached customers it never got to sweep: they passed through it.
    third_since = sinces[1]
    moved_late = {c.customer_id for c in changes if c.cause.kind == "rules" and c.at == third_since}
    assert moved_late - {event.customer_id for event in events[cuts[1]:cuts[2]]}
    assert identities(changes) == identities(reference)
    assert [profile(store.states[c], until, NEW) for c in sorted(store.states)] == [
        profile(reference_store.states[c], until, NEW) for c in sorted(reference_store.states)
    ]


def run_with_change(events, before: int, sweep_limit: int, since_tick: int) -> tuple[MemoryStore, list]:
    """Old rules for ``events[:before]`` and a tick, then the new rules: the sweep in
    chunks of ``sweep_limit`` between the remaining events, as the worker's batches do."""
    last = events[-1].occurred_at  # a closing tick that moves the clock no further
    return run_phases([(OLD, events[:before], since_tick, None), (NEW, events[before:], last, sweep_limit)])


@pytest.mark.parametrize("seed", [1, 2])
def test_what_the_change_emits_does_not_depend_on_how_the_sweep_is_cut(seed: int) -> None:
    events = history(seed)
    before = len(events) // 2
    since = events[before - 1].occurred_at + DAY
    reference_store, reference = run_with_change(events, before, 10_000, since)
    rules_caused = [change for change in reference if change.cause.kind == "rules"]
    assert len(rules_caused) > 5
    assert {change.at for change in rules_caused} == {since}
    for limit in (1, 7):
        store, changes = run_with_change(events, before, limit, since)
        assert identities(changes) == identities(reference)
        clock = store.clock()
        assert [profile(store.states[c], clock, NEW) for c in sorted(store.states)] == [
            profile(reference_store.states[c], clock, NEW) for c in sorted(reference_store.states)
        ]


def test_a_customer_loaded_for_an_event_adopts_the_rules_first() -> None:
    store = MemoryStore()
    old = PartitionProcessor(OLD, store)
    old.on_event(OrderEvent("e1", "alice", START, "o1", "placed", 20_000_000, False, None))
    since = START + 20 * DAY  # recency 20: R 5 under OLD, 4 under NEW
    old.on_tick(since)
    new = PartitionProcessor(NEW, store)
    step = new.on_event(CartEvent("e2", "alice", since + DAY, "k1", "add", 5_000_000))
    causes = [(change.cause.kind, change.at) for change in step.changes]
    assert causes[0] == ("rules", since)
    assert all(kind != "rules" or at == since for kind, at in causes)
    # The sweep passes over her: she is under the new rules already.
    assert new.sweep_rules(100).changes == []
    assert new.rules_record().swept


def test_a_change_the_new_rules_make_due_sooner_keeps_its_instant_and_the_sweep_makes_it_fire_on_time() -> None:
    def bob_under_new_rules() -> tuple[MemoryStore, PartitionProcessor]:
        store = MemoryStore()
        old = PartitionProcessor(OLD, store)
        old.on_event(OrderEvent("e1", "bob", START, "o1", "placed", 20_000_000, False, None))
        old.on_tick(START + 5 * DAY)  # bob's timer: recency 31, as OLD has it
        new = PartitionProcessor(NEW, store)
        new.on_tick(START + 5 * DAY)  # the change of rules
        return store, new

    day_11 = parse_rfc3339_ms("2023-01-12T00:00:00Z")  # recency 11: R 4 under NEW
    # Not swept yet: bob's timer is still the old one, so day 11 passes unnoticed, and
    # the change comes when he is next loaded, with its own instant.
    _, unswept = bob_under_new_rules()
    assert unswept.on_tick(day_11 + DAY).changes == []
    late = unswept.on_tick(START + 31 * DAY).changes
    assert (late[0].cause.kind, late[0].at) == ("time", day_11)
    # Swept: his timer is the new rules' one, and the change fires on its day.
    _, swept = bob_under_new_rules()
    assert swept.sweep_rules(10).changes == []  # the same segment at the instant of the change
    on_time = swept.on_tick(day_11 + DAY).changes
    assert (on_time[0].cause.kind, on_time[0].at) == ("time", day_11)
    assert identities(on_time + swept.on_tick(START + 31 * DAY).changes) == identities(late)


def test_a_late_event_for_a_customer_not_swept_yet_comes_after_what_the_new_rules_fired_by_the_clock() -> None:
    # Found by the chain property test below: the late order was applied before the new
    # rules' day-11 change had fired (the customer's timer was still the old rules'), so
    # it counted as on time, with its own instant.
    def run(sweep_in_time: bool) -> tuple[list, list]:
        store = MemoryStore()
        old = PartitionProcessor(OLD, store)
        changes = old.on_event(OrderEvent("e1", "alice", START, "o1", "placed", 20_000_000, False, None)).changes
        new = PartitionProcessor(NEW, store)
        changes += new.on_tick(START + 5 * DAY).changes  # the change of rules
        if sweep_in_time:
            changes += new.sweep_rules(10).changes
        changes += new.on_tick(START + 15 * DAY).changes  # past recency 11: R 4 under NEW
        late = new.on_event(OrderEvent("e2", "alice", START + 10 * DAY, "o2", "placed", 20_000_000, False, None)).changes
        return changes + late, late

    reference, late_in_reference = run(sweep_in_time=True)
    changes, late = run(sweep_in_time=False)
    assert identities(changes) == identities(reference)
    assert {change.cause.kind for change in late} == {"time", "event"}  # the day-11 change fires first
    assert [change.at for change in late if change.cause.kind == "event"] == [
        change.at for change in late_in_reference if change.cause.kind == "event"
    ]


# Rules a chain of changes can pass through in any order: distinct, and none needs more
# than what the one before it kept (the same order window after the first change).
CHAIN_RULES = [
    NEW, THIRD, FOURTH,
    Rules.model_validate({"window_days": 365, "tags": {"cart_abandoner": {"after_hours": 2}}}),
]


@st.composite
def chains(draw: st.DrawFn) -> tuple[list, list[int], list[Rules], list[int | None]]:
    """A history (with a few late events), where the rules change, to which rules, and
    how far each sweep gets before the next change (0: not started, None: done)."""
    events = history(draw(st.integers(0, 10_000)), customers=30, events=220)
    for index in draw(st.lists(st.integers(1, len(events) - 1), max_size=12)):
        events[index - 1], events[index] = events[index], events[index - 1]  # a late event
    changes = draw(st.integers(1, 3))
    cuts = sorted(draw(st.lists(st.integers(20, len(events) - 20), min_size=changes, max_size=changes, unique=True)))
    rules: list[Rules] = []
    for _ in range(changes):
        if len(rules) >= 2 and draw(st.booleans()):
            rules.append(rules[-2])  # a rollback, maybe to rules customers are still being moved away from
        else:
            rules.append(draw(st.sampled_from([r for r in CHAIN_RULES if not rules or r is not rules[-1]])))
    sweeps = draw(st.lists(st.sampled_from([0, 1, 4, None]), min_size=changes - 1, max_size=changes - 1))
    return events, cuts, rules, sweeps


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains(), st.sampled_from([1, 3, 50]))
def test_any_chain_of_changes_ends_as_if_every_sweep_had_finished_in_time(chain, last_sweep: int) -> None:
    events, cuts, rules, sweeps = chain
    bounds = [0, *cuts, len(events)]
    # Each change at a tick a day after the last event before it (the clock may stand
    # still between two changes when no event comes between).
    ends = [max(e.occurred_at for e in events[:cut]) + DAY for cut in cuts]
    until = max(e.occurred_at for e in events) + 40 * DAY
    in_turn = [OLD, *rules]

    def phases(between: list[int | None], last: int | None):
        return [
            (phase_rules, events[bounds[index]:bounds[index + 1]], [*ends, until][index],
             None if index == 0 else (last if index == len(in_turn) - 1 else between[index - 1]))
            for index, phase_rules in enumerate(in_turn)
        ]

    reference_store, reference = run_phases(phases([None] * len(sweeps), None))
    store, changes = run_phases(phases(sweeps, last_sweep))
    assert identities(changes) == identities(reference)
    final = in_turn[-1]
    assert [profile(store.states[c], until, final) for c in sorted(store.states)] == [
        profile(reference_store.states[c], until, final) for c in sorted(reference_store.states)
    ]
