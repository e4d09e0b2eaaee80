"""Events and ticks in, changes out, for the customers of one partition.

The partition clock is the latest ``occurred_at`` processed on the partition or the
latest tick, whichever is later (spec §1). Time-caused changes fire once the clock
passes their instant, found through the store's timer index, so a tick costs in
proportion to the customers that are due. A processor re-evaluates at most
``timers_per_batch`` of them; the next processors over the store go on where it stopped
(``catch_up``), and a customer loaded meanwhile is brought to the clock first, so the
changes do not depend on where the batches were cut.

A change of rules (``stream/processing/rules_change.py``) takes effect at the partition
clock when the processor first runs under the new rules: every customer stamped with
other rules adopts them at that instant when it is next loaded (passing first through
the rules of earlier changes whose sweeps were not done), and ``sweep_rules`` visits
the customers nothing else loads, a bounded number at a time.

An erasure request (``stream/core/erasure.py``) replaces the customer's state with a
stub and drops their timer; the stub stays among the touched customers, for the shell
to publish a tombstone instead of a profile (``CustomerState.erased``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from stream.core.changes import Change
from stream.core.engine import adopt_rules, advance, apply, look_ahead, new_state
from stream.core.erasure import erase
from stream.core.events import ErasureRequest, InputEvent
from stream.core.state import CustomerState
from stream.core.timers import next_due
from stream.processing.rules_change import RulesRecord, changeover, stamp_of
from stream.processing.store import ProcessorStore
from stream.rules import Rules

# Timers fired per store query; bounds memory when a tick releases very many at once.
_TIMER_BATCH = 1000


@dataclass
class StepResult:
    """What one event or tick did: the changes in emission order, and the customers it
    touched (their states after the step, to publish fresh profiles)."""

    changes: list[Change] = field(default_factory=list)
    touched: dict[str, CustomerState] = field(default_factory=dict)

    def extend(self, other: "StepResult") -> None:
        self.changes.extend(other.changes)
        self.touched.update(other.touched)


class PartitionProcessor:
    def __init__(self, rules: Rules, store: ProcessorStore, *, timers_per_batch: int | None = None) -> None:
        """``timers_per_batch``: how many due customers this processor re-evaluates at
        most (None: all); the rest stay due for the next processor over the store (see
        ``_fire_due``)."""
        self.rules = rules
        self.store = store
        self._rules_record: RulesRecord | None = None
        self._stamp: int | None = None
        self._timers_left = timers_per_batch

    def on_event(self, event: InputEvent) -> StepResult:
        result = self._move_clock(event.occurred_at)
        state, old_due, changes = self._load(event.customer_id)
        if isinstance(event, ErasureRequest):
            state, erasure = erase(state, event, self.rules)
            changes.extend(erasure)
            self._save(state, old_due)
            result.changes.extend(changes)
            if changes:
                result.touched[state.customer_id] = state
            return result
        if state is None:
            state = new_state(event.customer_id)
        changes.extend(apply(state, event, self.rules))
        if state.erased:  # an event from before the erasure, ignored: nothing to publish
            return result
        clock = self.store.clock()
        # A late event can make a change due before the partition clock: fire it now,
        # as the next tick would.
        if clock is not None:
            changes.extend(advance(state, clock, self.rules))
        self._save(state, old_due)
        result.changes.extend(changes)
        result.touched[state.customer_id] = state
        return result

    def on_tick(self, now: int) -> StepResult:
        return self._move_clock(now)

    def catch_up(self) -> StepResult:
        """Fire the timers due by the clock that earlier processors left (their
        ``timers_per_batch`` ran out), as far as this one's allows."""
        clock = self.store.clock()
        return self._fire_due(clock) if clock is not None else StepResult()

    def sweep_rules(self, limit: int) -> StepResult:
        """After a change of rules, adopt them for up to ``limit`` more stored customers
        (in customer id order; customers already under them are passed over)."""
        result = StepResult()
        record = self.rules_record()
        if record.swept:
            return result
        customer_ids = self.store.customer_ids_after(record.swept_to, limit)
        for customer_id in customer_ids:
            state = self.store.load(customer_id)
            if state is None or state.rules_tag == self.stamp() or state.erased:
                continue
            old_due = scheduled_due(state, self.rules)
            changes = self._adopt(state)
            self._save(state, old_due)
            result.changes.extend(changes)
            result.touched[customer_id] = state
        swept_to = customer_ids[-1] if customer_ids else record.swept_to
        if len(customer_ids) < limit:
            record = record.finished(swept_to)
        else:
            record = replace(record, swept_to=swept_to)
        self._set_rules_record(record)
        return result

    def rules_record(self) -> RulesRecord:
        """The partition's rules record, changed over to this processor's rules (raises
        ``RulesChangeError`` when the stored states cannot be)."""
        if self._rules_record is None:
            raw = self.store.rules_record()
            stored = RulesRecord.from_bytes(raw) if raw is not None else None
            record = changeover(stored, self.rules, self.store.clock())
            if record != stored:
                self._set_rules_record(record)
            self._rules_record = record
        return self._rules_record

    def _set_rules_record(self, record: RulesRecord) -> None:
        self._rules_record = record
        self._stamp = None
        self.store.set_rules_record(record.to_bytes())

    def stamp(self) -> int:
        """What the customers moved to these rules are stamped with: the rules and the
        change that brought them (``rules_change.stamp_of``)."""
        if self._stamp is None:
            self._stamp = stamp_of(self.rules, self.rules_record().generation)
        return self._stamp

    def _load(self, customer_id: str) -> tuple[CustomerState | None, int | None, list[Change]]:
        """The customer's state (None: never seen), the instant its timer is stored under,
        and the changes that bring it to the partition clock: adopting the rules, when it
        was stamped with others, and the time-caused changes due by the clock that no
        tick has fired yet (``_fire_due`` leaves some for later batches), so whatever
        loads it next sees it as if every tick had fired in full."""
        state = self.store.load(customer_id)
        if state is None:
            return None, None, []
        old_due = scheduled_due(state, self.rules)
        if state.rules_tag != self.stamp():
            return state, old_due, self._adopt(state)
        clock = self.store.clock()
        if old_due is not None and clock is not None and old_due <= clock:
            return state, old_due, advance(state, clock, self.rules)
        return state, old_due, []

    def _adopt(self, state: CustomerState) -> list[Change]:
        """Move a customer stamped with other rules to these, at the instant they took
        over, through the rules of earlier changes it has not been moved to yet; then on
        to the partition clock. Its timer was still the old rules' one, so the new rules'
        time-caused changes up to the clock have not fired: they fire here, before the
        event that loaded it (when that event is late, it comes after them, as it would
        had the sweep moved the customer in time)."""
        record = self.rules_record()
        if record.since is None:
            return []
        changes: list[Change] = []
        passage = record.passage(state.rules_tag)  # the customer's stamp
        own = record.own_rules(state.rules_tag)
        if own is not None:  # due under them still, when a tick left it for later batches
            changes.extend(advance(state, passage[0][1] if passage else record.since, own))
        for rules, since, until in passage:
            changes.extend(adopt_rules(state, since, rules))
            changes.extend(advance(state, until, rules))
        changes.extend(adopt_rules(state, record.since, self.rules))
        clock = self.store.clock()
        if clock is not None:
            changes.extend(advance(state, clock, self.rules))
        return changes

    def _move_clock(self, now: int) -> StepResult:
        # The record first: a change of rules takes effect at the clock as it stood.
        self.rules_record()
        clock = self.store.clock()
        if clock is None or now > clock:
            self.store.set_clock(now)
            clock = now
        return self._fire_due(clock)

    def _fire_due(self, clock: int) -> StepResult:
        """Re-evaluate the customers due by ``clock``, earliest first, up to the
        processor's ``timers_per_batch``. A tick after a long pause (a worker back from an
        outage, a replay's ``--until`` months ahead) can make a sizeable share of all
        customers due at once; fired in one batch, their states, changes and profiles
        would all be held at once. Those left over are fired by later batches, or as they
        are loaded (``_load``), with the same changes."""
        result = StepResult()
        while True:
            limit = _TIMER_BATCH if self._timers_left is None else min(_TIMER_BATCH, self._timers_left)
            due = self.store.due(clock, limit) if limit else []
            if not due:
                return result
            if self._timers_left is not None:
                self._timers_left -= len(due)
            for instant, customer_id in due:
                state, old_due, changes = self._load(customer_id)
                if state is None:  # a timer outliving its customer: drop it
                    self.store.reschedule(customer_id, instant, None)
                    continue
                if old_due is None or old_due > clock:  # not brought to the clock by _load
                    changes.extend(advance(state, clock, self.rules))
                self._save(state, instant)
                result.changes.extend(changes)
                result.touched[customer_id] = state

    def first_due_left(self) -> int | None:
        """The instant of the earliest timer due by the partition clock that has not
        fired (``timers_per_batch`` ran out), None when every due one has."""
        clock = self.store.clock()
        if clock is None:
            return None
        due = self.store.due(clock, 1)
        return due[0][0] if due else None

    def _save(self, state: CustomerState, old_due: int | None) -> None:
        look_ahead(state, self.rules)  # the timer skips candidates that would change nothing
        state.rules_tag = self.stamp()  # the core stamps the rules alone; this adds the change
        self.store.save(state)
        self.store.reschedule(state.customer_id, old_due, next_due(state, self.rules))


def scheduled_due(state: CustomerState, rules: Rules) -> int | None:
    """The instant the customer's timer is stored under: the one its state was saved
    with (``due_memo``, whatever rules it was worked out under), else worked out now."""
    if state.evaluated_at is None:
        return None
    memo = state.due_memo
    if memo is not None:
        return memo[1]
    return next_due(state, rules)
