"""A :class:`~stream.processing.ProcessorStore` over faust tables, one partition at a time.

Four tables, each on RocksDB with a Kafka changelog:

- ``customers``: customer id -> the core's state bytes;
- ``timers``: 8-byte big-endian due instant + customer id -> empty. RocksDB keeps keys
  sorted, so the due timers are a prefix of the partition's key space: a tick reads
  exactly the customers that are due, never all of them;
- ``clocks``: ``clock:<partition>`` -> the partition clock (epoch ms),
  ``census:<partition>`` -> the partition's census (stream/processing/census.py), and
  ``rules:<partition>`` -> the rules it runs under (stream/processing/rules_change.py),
  ``backlog:<partition>`` -> while customers due by the clock wait for later batches
  (``timers_per_batch``), the earliest of their timers' instants;
- ``recent_changes``: (customer id, change sequence number) -> that change as the
  customer lookup shows it (``history_entry``), the customer's latest HISTORY_LIMIT
  changes; each change is written once and deleted HISTORY_LIMIT changes later.

Writes are buffered and flushed by the agent only after the batch's outputs are
delivered: a crash in between re-processes the batch and re-sends the outputs (same
change ids) instead of losing them.
"""

from __future__ import annotations

import heapq
from typing import Any

import orjson

from stream.core.json_bytes import dumps_compact
from stream.core.state import CustomerState
from stream.processing.census import Census, Standing, standing_of
from stream.processing.processor import scheduled_due
from stream.rules import Rules
from stream.worker.plumbing import ChangelogRecord, LocalWrites, read_local
from stream.worker.table_keys import (
    DUE, backlog_key, census_key, clock_key, history_key, history_prefix, offset_key, rules_key, split_timer_key, timer_key,
)

# faust keeps its own bookkeeping (the changelog offset) in every partition's RocksDB.
_FAUST_KEY_PREFIX = b"__faust"
_DELETED = object()
_UNSCANNED = object()
# Changes kept per customer for the lookup; older ones are on the segment-changes topic.
# One record per change: a list per customer rewritten on every change made the history
# the largest of the changelogs (1.5 KB a write, 72 % of the changelog bytes of a CDNOW
# replay) and cost the worker about a fifth of its throughput (BENCHMARKS.md).
HISTORY_LIMIT = 20
_HISTORY_FIELDS = ("change_id", "kind", "from", "to", "tag", "entered", "at", "cause", "segment", "scores", "rules_version")


def history_entry(change_record: dict[str, Any]) -> dict[str, Any]:
    """The part of a segment-change record kept in the customer's history."""
    return {field: change_record[field] for field in _HISTORY_FIELDS if field in change_record}


def read_history(db: Any, customer_id: str) -> list[dict[str, Any]]:
    """The customer's stored history in one partition's RocksDB, oldest first."""
    return [orjson.loads(value) for _, value in _history_items(db, customer_id)]


def _history_items(db: Any, customer_id: str):
    prefix = history_prefix(customer_id)
    iterator = db.iter()
    iterator.seek(prefix)
    while iterator.valid() and iterator.key().startswith(prefix):
        yield iterator.key(), iterator.value()
        iterator.next()


def stored_last_offset(clocks: Any, partition: int) -> int | None:
    """The last offset of the source partition whose effects are in the stored state."""
    raw = read_local(clocks, partition, offset_key(partition))
    return int(raw) if raw is not None else None


def _iter_items(db: Any):
    """(key, value) of one partition's rocksdict, skipping faust's own bookkeeping."""
    iterator = db.iter()
    iterator.seek_to_first()
    while iterator.valid():
        if not iterator.key().startswith(_FAUST_KEY_PREFIX):
            yield iterator.key(), iterator.value()
        iterator.next()


class TableStore:
    def __init__(self, customers: Any, timers: Any, clocks: Any, partition: int, history: Any = None) -> None:
        self._customers_table = customers
        self._timers_table = timers
        self._clocks_table = clocks
        self._history_table = history
        self.partition = partition
        self._states: dict[str, CustomerState] = {}
        # Each loaded customer's standing as stored (None: not stored yet), for the census.
        self._before: dict[str, Standing | None] = {}
        self._census: Census | None = None
        self._history_writes: dict[bytes, bytes | None] = {}  # key -> entry, or None: delete
        self._last_offset: int | None = None
        self._dirty: set[str] = set()
        self._timer_writes: dict[bytes, object] = {}  # key -> b"" (set) or _DELETED
        self._timer_puts: list[bytes] = []  # heap of this batch's timer keys (see due)
        # The first persisted timer key not deleted by this batch; None: none left.
        self._persisted_cursor: bytes | None | object = _UNSCANNED
        self._clock: int | None = None
        self._persisted_clock: int | None = None
        self._clock_loaded = False
        self._clock_dirty = False
        self._rules_record: bytes | None = None  # to write at the flush
        self._backlog_loaded = False
        self._persisted_backlog: int | None = None
        self._backlog: int | None = None

    # ---------------------------------------------------------------- states

    def load(self, customer_id: str) -> CustomerState | None:
        state = self._states.get(customer_id)
        if state is None:
            raw = read_local(self._customers_table, self.partition, customer_id.encode())
            if raw is None:
                self._before[customer_id] = None
                return None
            state = CustomerState.from_bytes(raw)
            self._states[customer_id] = state
            self._before[customer_id] = standing_of(state)
        return state

    def save(self, state: CustomerState) -> None:
        self._before.setdefault(state.customer_id, None)
        self._states[state.customer_id] = state
        self._dirty.add(state.customer_id)

    # ---------------------------------------------------------------- timers

    def due(self, now: int, limit: int) -> list[tuple[int, str]]:
        """Timers come from two places: the partition's RocksDB (persisted by earlier
        batches) and this batch's writes. The processor asks after every event (the
        clock moves with them), so neither is read in full each time: the persisted
        keys from a cursor at the first live one, this batch's from a heap."""
        upper = DUE.pack(now + 1)
        found: set[bytes] = set()
        cursor = self._persisted_cursor
        if cursor is _UNSCANNED or (cursor is not None and cursor < upper):
            if isinstance(cursor, bytes):
                start = cursor
            else:
                fired_through = self._fired_through()
                start = DUE.pack(fired_through + 1) if fired_through is not None else b""
            first_live: bytes | None = None
            for key in self._iter_persisted_timer_keys(start):
                if self._timer_writes.get(key) is _DELETED:
                    continue
                if first_live is None:
                    first_live = key
                if key >= upper or len(found) >= limit:
                    break
                found.add(key)
            self._persisted_cursor = first_live
        puts = self._timer_puts
        live_puts = []
        while puts and puts[0] < upper:
            key = heapq.heappop(puts)
            if self._timer_writes.get(key) is not _DELETED:
                live_puts.append(key)
        found.update(live_puts)
        for key in live_puts:  # still due until the processor reschedules them
            heapq.heappush(puts, key)
        return [split_timer_key(key) for key in sorted(found)[:limit]]

    def _fired_through(self) -> int | None:
        """Every timer at or before the clock persisted by the last batch has fired (and
        was deleted), except from its backlog on, so scans can start there and skip the
        deleted keys' tombstones, which RocksDB would otherwise walk one by one."""
        if not self._clock_loaded:
            self.clock()
        backlog = self.timer_backlog()
        if backlog is not None and self._persisted_clock is not None:
            return min(self._persisted_clock, backlog - 1)
        return self._persisted_clock

    def _iter_persisted_timer_keys(self, start: bytes):
        # faust's RocksDB store keeps one rocksdict per partition, opened in raw mode,
        # so iteration is in byte order of the keys. (No public faust API exposes it.)
        db = self._timers_table.data._db_for_partition(self.partition)
        iterator = db.iter()
        iterator.seek(start)
        while iterator.valid():
            yield iterator.key()
            iterator.next()

    def reschedule(self, customer_id: str, old_due: int | None, new_due: int | None) -> None:
        if old_due == new_due:
            return
        if old_due is not None:
            self._timer_writes[timer_key(old_due, customer_id)] = _DELETED
        if new_due is not None:
            key = timer_key(new_due, customer_id)
            self._timer_writes[key] = b""
            heapq.heappush(self._timer_puts, key)

    def repair_timers(self, rules: Rules) -> int:
        """Re-derive the partition's timer index from its customer states.

        Under at-least-once, a crash can persist a customer's new state while the
        matching timer write is lost (different changelog partitions, no transaction).
        After an unclean stop the worker runs this once per partition, a full scan of
        that partition, so no customer's time-caused change is ever skipped.

        Each timer goes where the processor will look for it (``scheduled_due``): the
        instant stored with the state, worked out under the rules the state was saved
        under. Worked out afresh under ``rules`` instead, a state not yet moved to new
        rules got its timer moved to where the processor would not delete it, and, when
        the new rules' instant was the old one, lost it.
        Returns the number of timers written."""
        scheduled: dict[str, int] = {}
        for key, _ in _iter_items(self._timers_db()):
            due, customer_id = split_timer_key(key)
            scheduled[customer_id] = due
        written = 0
        for _, raw in _iter_items(self._customers_db()):
            state = CustomerState.from_bytes(raw)
            expected = scheduled_due(state, rules)
            current = scheduled.get(state.customer_id)
            if current != expected:
                self.reschedule(state.customer_id, current, expected)
                written += 1
        # The census may be as stale as the timers were.
        self._census = self._recount()
        return written

    def _customers_db(self) -> Any:
        return self._customers_table.data._db_for_partition(self.partition)

    def _timers_db(self) -> Any:
        return self._timers_table.data._db_for_partition(self.partition)

    # ---------------------------------------------------------- source offset

    def set_last_offset(self, offset: int) -> None:
        self._last_offset = offset

    # ----------------------------------------------------------- rules change

    def customer_ids_after(self, customer_id: str | None, limit: int) -> list[str]:
        after = None if customer_id is None else customer_id.encode()
        iterator = self._customers_db().iter()
        if after is None:
            iterator.seek_to_first()
        else:
            iterator.seek(after)
        found: list[str] = []
        while iterator.valid() and len(found) < limit:
            key = iterator.key()
            if key != after and not key.startswith(_FAUST_KEY_PREFIX):
                found.append(key.decode())
            iterator.next()
        return found

    def rules_record(self) -> bytes | None:
        if self._rules_record is not None:
            return self._rules_record
        return read_local(self._clocks_table, self.partition, rules_key(self.partition))

    def set_rules_record(self, record: bytes) -> None:
        self._rules_record = record

    # ---------------------------------------------------------------- census

    def census(self) -> Census:
        """The partition's census as stored, counted from the states if there is none."""
        if self._census is None:
            raw = read_local(self._clocks_table, self.partition, census_key(self.partition))
            self._census = Census.from_bytes(raw) if raw is not None else self._recount()
        return self._census

    def _recount(self) -> Census:
        """A full scan of the partition (see stream/processing/census.py for when)."""
        timers = sum(1 for _ in _iter_items(self._timers_db()))
        states = (CustomerState.from_bytes(raw) for _, raw in _iter_items(self._customers_db()))
        return Census.count(states, timers)

    # --------------------------------------------------------------- history

    def add_history(self, customer_id: str, seq: int, record: dict[str, Any]) -> None:
        """Keep change number ``seq`` of the customer (a JSON-ready change record) and
        let go of the one HISTORY_LIMIT changes older. Blind writes: a batch processed
        again writes the same keys."""
        writes = self._history_writes
        writes[history_key(customer_id, seq)] = dumps_compact(history_entry(record))
        if seq > HISTORY_LIMIT:
            writes[history_key(customer_id, seq - HISTORY_LIMIT)] = None

    def forget_history(self, customer_id: str) -> None:
        """Delete the customer's history: what is stored and what this batch added (an
        erasure; history_key's length prefix keeps other customers' keys out)."""
        prefix = history_prefix(customer_id)
        writes = self._history_writes
        for key in [key for key in writes if key.startswith(prefix)]:
            writes[key] = None
        history_db = self._history_table.data._db_for_partition(self.partition)
        for key, _ in _history_items(history_db, customer_id):
            writes[key] = None

    # ----------------------------------------------------------------- clock

    def clock(self) -> int | None:
        if not self._clock_loaded:
            raw = read_local(self._clocks_table, self.partition, clock_key(self.partition))
            self._clock = self._persisted_clock = int(raw) if raw is not None else None
            self._clock_loaded = True
        return self._clock

    def set_clock(self, now: int) -> None:
        self.clock()  # remember the persisted clock before moving it
        self._clock = now
        self._clock_dirty = True

    def timer_backlog(self) -> int | None:
        """The earliest instant of the timers due by the clock that are still to fire,
        as the last batch left them (None: none)."""
        if not self._backlog_loaded:
            raw = read_local(self._clocks_table, self.partition, backlog_key(self.partition))
            self._persisted_backlog = self._backlog = int(raw) if raw is not None else None
            self._backlog_loaded = True
        return self._persisted_backlog

    def set_timer_backlog(self, first_due: int | None) -> None:
        self.timer_backlog()
        self._backlog = first_due

    # ----------------------------------------------------------------- flush

    def flush(self) -> list[ChangelogRecord]:
        """Write the buffered changes to the local tables; return the changelog records
        for the agent to send (see ``plumbing.LocalWrites`` for why the agent sends them).
        They go to this partition of each changelog topic.
        """
        writes = LocalWrites(self.partition)
        put = writes.put
        census_changed = bool(self._dirty or self._timer_writes) or self._census is not None
        census = self.census() if census_changed else None
        for customer_id in self._dirty:
            state = self._states[customer_id]
            after = standing_of(state)
            census.move(self._before[customer_id], after)
            self._before[customer_id] = after
            put(self._customers_table, customer_id.encode(), state.to_bytes())
        timers_db = self._timers_db()
        for key, write in self._timer_writes.items():
            # Timer writes are blind (the old instant comes from the state), so count
            # only the ones that really add or remove a key.
            if write is _DELETED:
                if timers_db.get(key) is not None:
                    census.timers -= 1
                put(self._timers_table, key, None)
            else:
                if timers_db.get(key) is None:
                    census.timers += 1
                put(self._timers_table, key, b"")
        if self._clock_dirty and self._clock is not None:
            put(self._clocks_table, clock_key(self.partition), str(self._clock).encode())
        if census is not None:
            put(self._clocks_table, census_key(self.partition), census.to_bytes())
        if self._rules_record is not None:
            put(self._clocks_table, rules_key(self.partition), self._rules_record)
            self._rules_record = None
        if self._backlog_loaded and self._backlog != self._persisted_backlog:
            put(self._clocks_table, backlog_key(self.partition),
                None if self._backlog is None else str(self._backlog).encode())
            self._persisted_backlog = self._backlog
        if self._last_offset is not None:
            put(self._clocks_table, offset_key(self.partition), str(self._last_offset).encode())
            self._last_offset = None
        for key, entry in self._history_writes.items():
            put(self._history_table, key, entry)
        self._dirty.clear()
        self._timer_writes.clear()
        self._timer_puts.clear()
        self._persisted_cursor = _UNSCANNED
        self._history_writes.clear()
        self._clock_dirty = False
        return writes.apply()
