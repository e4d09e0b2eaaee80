"""Events and ticks in, changes out, for the customers of one partition.

The partition clock is the latest ``occurred_at`` processed on the partition or the
latest tick, whichever is later (spec §1). Time-caused changes fire once the clock
passes their instant, found through the store's timer index, so a tick costs in
proportion to the customers that are due.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stream.core.changes import Change
from stream.core.engine import advance, apply, look_ahead, new_state
from stream.core.events import Event
from stream.core.state import CustomerState
from stream.core.timers import next_due
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
    def __init__(self, rules: Rules, store: ProcessorStore) -> None:
        self.rules = rules
        self.store = store

    def on_event(self, event: Event) -> StepResult:
        result = self._move_clock(event.occurred_at)
        state = self.store.load(event.customer_id) or new_state(event.customer_id)
        old_due = next_due(state, self.rules) if state.evaluated_at is not None else None
        changes = apply(state, event, self.rules)
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

    def _move_clock(self, now: int) -> StepResult:
        clock = self.store.clock()
        if clock is None or now > clock:
            self.store.set_clock(now)
            clock = now
        return self._fire_due(clock)

    def _fire_due(self, clock: int) -> StepResult:
        result = StepResult()
        while True:
            due = self.store.due(clock, _TIMER_BATCH)
            if not due:
                return result
            for instant, customer_id in due:
                state = self.store.load(customer_id)
                if state is None:  # a timer outliving its customer: drop it
                    self.store.reschedule(customer_id, instant, None)
                    continue
                changes = advance(state, clock, self.rules)
                self._save(state, instant)
                result.changes.extend(changes)
                result.touched[customer_id] = state

    def _save(self, state: CustomerState, old_due: int | None) -> None:
        look_ahead(state, self.rules)  # the timer skips candidates that would change nothing
        self.store.save(state)
        self.store.reschedule(state.customer_id, old_due, next_due(state, self.rules))
