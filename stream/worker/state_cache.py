"""Decoded customer states kept between batches (a write-through cache over the
``customers`` table).

Why: a customer is touched many times (its events, then each time-caused change on a
later day), and every touch used to read its bytes from RocksDB, decode them and
rebuild the record summary the rules evaluate (``stream.core.summary``): about a
quarter of the customer agent's time in the throughput benchmark (BENCHMARKS.md). Kafka
Streams keeps a record cache in front of its stores for the same reason.

Write-through, never write-back: every batch still writes each state it changed to
RocksDB and its changelog (``TableStore.flush``), so the cache only saves reads, and
dropping it at any moment loses nothing. It holds the very objects the batch mutates,
which is why the agent drops it (``clear``) when a batch fails half-way, and on every
rebalance (a partition that comes back may have been restored from its changelog,
written by another worker meanwhile). A batch that began before a ``clear`` keeps its
states to itself (``put`` with the generation it started in): it may finish after a
rebalance's recovery has rewritten its partition.

Bounded by an estimate of the memory it takes, least recently used out first. A
decoded state with its summary takes about 1 KB plus 7 times its encoded size
(``python -m stream.core._measure``: 1.4 KB for a new customer of 141 encoded bytes,
15 KB for a regular one of 2.4 KB, 93 KB for a heavy one of 11 KB); the mean of the
CDNOW customers is 350 encoded bytes, 3.1 KB decoded.
"""

from __future__ import annotations

from collections import OrderedDict

from stream.core.state import CustomerState


_FIXED_BYTES = 1_000
_BYTES_PER_ENCODED_BYTE = 7


def estimated_bytes(encoded_size: int) -> int:
    """What a state of ``encoded_size`` bytes takes once decoded, summary included."""
    return _FIXED_BYTES + _BYTES_PER_ENCODED_BYTE * encoded_size


class StateCache:
    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self.size_bytes = 0
        self.generation = 0  # how many times it was cleared
        self._states: OrderedDict[str, tuple[CustomerState, int]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._states)

    def get(self, customer_id: str) -> CustomerState | None:
        entry = self._states.get(customer_id)
        if entry is None:
            self.misses += 1
            return None
        self._states.move_to_end(customer_id)
        self.hits += 1
        return entry[0]

    def put(self, state: CustomerState, encoded_size: int, generation: int) -> None:
        """Keep ``state``, which must be what the ``customers`` table now holds for it
        (``encoded_size`` bytes there), unless the cache was cleared since
        ``generation`` (what ``generation`` was when the caller began)."""
        cost = estimated_bytes(encoded_size)
        if cost > self.capacity_bytes or generation != self.generation:
            return
        states = self._states
        previous = states.pop(state.customer_id, None)
        if previous is not None:
            self.size_bytes -= previous[1]
        states[state.customer_id] = (state, cost)
        self.size_bytes += cost
        while self.size_bytes > self.capacity_bytes:
            _, (_, evicted_cost) = states.popitem(last=False)
            self.size_bytes -= evicted_cost

    def clear(self) -> None:
        self._states.clear()
        self.size_bytes = 0
        self.generation += 1
