"""A :class:`~stream.processing.ProcessorStore` over faust tables, one partition at a time.

Three tables, each on RocksDB with a Kafka changelog:

- ``customers``: customer id -> the core's state bytes;
- ``timers``: 8-byte big-endian due instant + customer id -> empty. RocksDB keeps keys
  sorted, so the due timers are a prefix of the partition's key space: a tick reads
  exactly the customers that are due, never all of them;
- ``clocks``: ``clock:<partition>`` -> the partition clock (epoch ms).

Writes are buffered and flushed by the agent only after the batch's outputs are
delivered: a crash in between re-processes the batch and re-sends the outputs (same
change ids) instead of losing them.
"""

from __future__ import annotations

import struct
from typing import Any

from stream.core.state import CustomerState

_DUE = struct.Struct(">q")
# faust keeps its own bookkeeping (the changelog offset) in every partition's RocksDB.
_FAUST_KEY_PREFIX = b"__faust"
_DELETED = object()


def timer_key(due: int, customer_id: str) -> bytes:
    return _DUE.pack(due) + customer_id.encode()


def split_timer_key(key: bytes) -> tuple[int, str]:
    return _DUE.unpack_from(key)[0], key[_DUE.size :].decode()


def clock_key(partition: int) -> bytes:
    return f"clock:{partition}".encode()


class TableStore:
    def __init__(self, customers: Any, timers: Any, clocks: Any, partition: int) -> None:
        self._customers_table = customers
        self._timers_table = timers
        self._clocks_table = clocks
        self.partition = partition
        self._states: dict[str, CustomerState] = {}
        self._dirty: set[str] = set()
        self._timer_writes: dict[bytes, object] = {}  # key -> b"" (set) or _DELETED
        self._clock: int | None = None
        self._persisted_clock: int | None = None
        self._clock_loaded = False
        self._clock_dirty = False

    # ---------------------------------------------------------------- states

    def load(self, customer_id: str) -> CustomerState | None:
        state = self._states.get(customer_id)
        if state is None:
            raw = self._customers_table.get(customer_id.encode())
            if raw is None:
                return None
            state = CustomerState.from_bytes(raw)
            self._states[customer_id] = state
        return state

    def save(self, state: CustomerState) -> None:
        self._states[state.customer_id] = state
        self._dirty.add(state.customer_id)

    # ---------------------------------------------------------------- timers

    def due(self, now: int, limit: int) -> list[tuple[int, str]]:
        found: dict[bytes, None] = {}
        upper = _DUE.pack(now + 1)
        for key in self._iter_persisted_timer_keys(self._fired_through()):
            if key >= upper or len(found) >= limit:
                break
            if self._timer_writes.get(key) is not _DELETED:
                found[key] = None
        for key, write in self._timer_writes.items():
            if write is not _DELETED and key < upper:
                found[key] = None
        return [split_timer_key(key) for key in sorted(found)[:limit]]

    def _fired_through(self) -> int | None:
        """Every timer at or before the clock persisted by the last batch has fired (and
        was deleted), so scans can start after it and skip the deleted keys' tombstones,
        which RocksDB would otherwise walk one by one."""
        if not self._clock_loaded:
            self.clock()
        return self._persisted_clock

    def _iter_persisted_timer_keys(self, fired_through: int | None):
        # faust's RocksDB store keeps one rocksdict per partition, opened in raw mode,
        # so iteration is in byte order of the keys. (No public faust API exposes it.)
        db = self._timers_table.data._db_for_partition(self.partition)
        iterator = db.iter()
        if fired_through is None:
            iterator.seek_to_first()
        else:
            iterator.seek(_DUE.pack(fired_through + 1))
        while iterator.valid():
            yield iterator.key()
            iterator.next()

    def reschedule(self, customer_id: str, old_due: int | None, new_due: int | None) -> None:
        if old_due == new_due:
            return
        if old_due is not None:
            self._timer_writes[timer_key(old_due, customer_id)] = _DELETED
        if new_due is not None:
            self._timer_writes[timer_key(new_due, customer_id)] = b""

    def repair_timers(self, next_due) -> int:
        """Re-derive the partition's timer index from its customer states.

        Under at-least-once, a crash can persist a customer's new state while the
        matching timer write is lost (different changelog partitions, no transaction).
        After an unclean stop the worker runs this once per partition, a full scan of
        that partition, so no customer's time-caused change is ever skipped.
        Returns the number of timers written."""
        customers_db = self._customers_table.data._db_for_partition(self.partition)
        timers_db = self._timers_table.data._db_for_partition(self.partition)
        scheduled: dict[str, int] = {}
        iterator = timers_db.iter()
        iterator.seek_to_first()
        while iterator.valid():
            if not iterator.key().startswith(_FAUST_KEY_PREFIX):
                due, customer_id = split_timer_key(iterator.key())
                scheduled[customer_id] = due
            iterator.next()
        written = 0
        iterator = customers_db.iter()
        iterator.seek_to_first()
        while iterator.valid():
            if iterator.key().startswith(_FAUST_KEY_PREFIX):
                iterator.next()
                continue
            state = CustomerState.from_bytes(iterator.value())
            expected = next_due(state)
            current = scheduled.get(state.customer_id)
            if current != expected:
                self.reschedule(state.customer_id, current, expected)
                written += 1
            iterator.next()
        return written

    # ----------------------------------------------------------------- clock

    def clock(self) -> int | None:
        if not self._clock_loaded:
            raw = self._clocks_table.get(clock_key(self.partition))
            self._clock = self._persisted_clock = int(raw) if raw is not None else None
            self._clock_loaded = True
        return self._clock

    def set_clock(self, now: int) -> None:
        self.clock()  # remember the persisted clock before moving it
        self._clock = now
        self._clock_dirty = True

    # ----------------------------------------------------------------- flush

    def flush(self) -> list[tuple[str, bytes, bytes | None]]:
        """Write the buffered changes to the local tables; return the changelog records
        ``(topic, key, value or None for a deletion)`` for the agent to send.

        The agent sends them itself, like its outputs, and waits for the broker's
        acknowledgement before the batch's offsets can commit: a source offset must
        never be committed while the state it produced is only in a send buffer.
        (faust's ``table[key] = value`` queues the record in its own producer buffer and
        drops the future.) They go to this partition of each changelog topic.
        """
        records: list[tuple[str, bytes, bytes | None]] = []

        def put(table: Any, key: bytes, value: bytes) -> None:
            records.append((table.changelog_topic.get_topic_name(), key, value))
            table.data[key] = value

        def delete(table: Any, key: bytes) -> None:
            records.append((table.changelog_topic.get_topic_name(), key, None))
            table.data.pop(key, None)

        for customer_id in self._dirty:
            put(self._customers_table, customer_id.encode(), self._states[customer_id].to_bytes())
        for key, write in self._timer_writes.items():
            if write is _DELETED:
                delete(self._timers_table, key)
            else:
                put(self._timers_table, key, b"")
        if self._clock_dirty and self._clock is not None:
            put(self._clocks_table, clock_key(self.partition), str(self._clock).encode())
        self._dirty.clear()
        self._timer_writes.clear()
        self._clock_dirty = False
        return records
