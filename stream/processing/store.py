"""What the processor needs from storage, and an in-memory implementation."""

from __future__ import annotations

import bisect
import heapq
from typing import Protocol

from stream.core.state import CustomerState


class ProcessorStore(Protocol):
    """Customer states, a timer index ordered by due instant, and the partition clock.

    ``due`` must cost in proportion to the timers it returns, never to all customers:
    that is what keeps time-caused changes cheap at millions of customers.
    """

    def load(self, customer_id: str) -> CustomerState | None: ...

    def save(self, state: CustomerState) -> None: ...

    def due(self, now: int, limit: int) -> list[tuple[int, str]]:
        """Up to ``limit`` timers with instant ``<= now``, earliest first."""
        ...

    def reschedule(self, customer_id: str, old_due: int | None, new_due: int | None) -> None: ...

    def clock(self) -> int | None: ...

    def set_clock(self, now: int) -> None: ...

    def customer_ids_after(self, customer_id: str | None, limit: int) -> list[str]:
        """Up to ``limit`` stored customer ids after ``customer_id`` (None: from the
        first), in the order the store keeps them; only a change of rules walks them."""
        ...

    def rules_record(self) -> bytes | None:
        """The partition's rules record (``stream/processing/rules_change.py``)."""
        ...

    def set_rules_record(self, record: bytes) -> None: ...


class MemoryStore:
    """A dict of states and a heap of timers (lazy deletion). Used by the batch command."""

    def __init__(self) -> None:
        self.states: dict[str, CustomerState] = {}
        self._scheduled: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        self._clock: int | None = None
        self._rules_record: bytes | None = None

    def load(self, customer_id: str) -> CustomerState | None:
        return self.states.get(customer_id)

    def save(self, state: CustomerState) -> None:
        self.states[state.customer_id] = state

    def due(self, now: int, limit: int) -> list[tuple[int, str]]:
        found: list[tuple[int, str]] = []
        while self._heap and self._heap[0][0] <= now and len(found) < limit:
            instant, customer_id = heapq.heappop(self._heap)
            if self._scheduled.get(customer_id) == instant:
                found.append((instant, customer_id))
        # Still scheduled: the processor reschedules them after advancing.
        for entry in found:
            heapq.heappush(self._heap, entry)
        return found

    def reschedule(self, customer_id: str, old_due: int | None, new_due: int | None) -> None:
        if new_due is None:
            self._scheduled.pop(customer_id, None)
            return
        if self._scheduled.get(customer_id) != new_due:
            self._scheduled[customer_id] = new_due
            heapq.heappush(self._heap, (new_due, customer_id))

    def clock(self) -> int | None:
        return self._clock

    def set_clock(self, now: int) -> None:
        self._clock = now

    def customer_ids_after(self, customer_id: str | None, limit: int) -> list[str]:
        ordered = sorted(self.states)
        start = 0 if customer_id is None else bisect.bisect_right(ordered, customer_id)
        return ordered[start : start + limit]

    def rules_record(self) -> bytes | None:
        return self._rules_record

    def set_rules_record(self, record: bytes) -> None:
        self._rules_record = record
