"""The durable ledger of actions: one row per ``action_id``, in SQLite (stdlib sqlite3).

Exactly one email per action rests on four rules (README, "Exactly one email per
action"):

1. an action is written here as ``pending`` before its Kafka offset is committed, so a
   crash re-reads it at worst, and ``INSERT OR IGNORE`` on ``action_id`` makes the
   re-read a no-op. It is sent only once confirmed (its commit returned, or was found to
   be this ledger's: :func:`settle_unconfirmed`), as another sender of the group may
   read it again after a commit that did not go through;
2. ``sending`` is made durable right before the SMTP end-of-data marker goes out, the
   only moment a server can accept the message;
3. ``sent`` is written right after the 250 reply;
4. a row found ``sending`` at start-up becomes ``unknown``, never ``pending``: the
   message may have been accepted, so it is not sent again. Only an operator, with the
   mail server's logs in hand, settles it (:meth:`Ledger.resolve`, ``segments ledger``).

WAL mode with ``synchronous=FULL``: every commit is on disk before it returns (a
process crash *and* a power cut keep it), and the tests can read the ledger while the
sender writes it.

The state machine itself (``TRANSITIONS``) is pure and unit-tested; every update checks
the current state in its ``WHERE`` clause, so a transition the table forbids cannot
happen even if the code asked for it.

The same database keeps the latest ``customer-profiles`` record of every customer and
the offsets read so far, written in one transaction, so the re-check state and its
position in the topic can never disagree after a crash.

An erased customer (:meth:`Ledger.erase`): every action of theirs not sent yet becomes
``skipped`` (reason ``erased``) and every row of theirs is redacted, keeping what "no
email twice" needs: the ``action_id`` (a redelivered action is still a no-op), the
state, and ``expires_at`` (so ``prune`` can still judge the row). Their profile goes with
the tombstone the worker writes on ``customer-profiles`` (:meth:`Ledger.store_profiles`).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import orjson

from stream.sender.action import Action, parse_instant
from stream.sender.eligibility import Profile, decode_profile

PENDING, SENDING, SENT, UNKNOWN, SKIPPED, EXPIRED, FAILED = "pending", "sending", "sent", "unknown", "skipped", "expired", "failed"
STATES = (PENDING, SENDING, SENT, UNKNOWN, SKIPPED, EXPIRED, FAILED)
TERMINAL = frozenset({SENT, UNKNOWN, SKIPPED, EXPIRED, FAILED})
# None: not in the ledger yet.
TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({PENDING}),
    # pending -> pending: a transient failure before the end-of-data marker, retried later.
    PENDING: frozenset({PENDING, SENDING, SKIPPED, EXPIRED, FAILED}),
    # sending -> pending: the server refused the finished message with a 4xx, so it was
    # certainly not accepted. sending -> unknown: no reply, or a restart found it.
    SENDING: frozenset({SENT, PENDING, FAILED, UNKNOWN}),
    **{state: frozenset() for state in TERMINAL},
}


# What an operator may settle an ``unknown`` action as, once the mail server's logs say
# whether it accepted the message (``segments ledger resolve``): sent; failed (never sent);
# pending, to send it (again) at the sender's next round.
RESOLUTIONS: dict[str, str] = {"sent": SENT, "failed": FAILED, "resend": PENDING}
# Terminal states ``segments ledger prune`` may delete; ``unknown`` rows wait for a resolution.
PRUNABLE = frozenset({SENT, SKIPPED, EXPIRED, FAILED})


# An erased customer's rows keep no customer id ("" is none: customer ids are never empty).
ERASED_CUSTOMER = ""
SKIP_ERASED = "erased"
# What a redacted row's record keeps: its id, and when it expires (for ``prune``).
REDACTED_FIELDS = ("action_id", "expires_at")


def belongs_to_erased_history(record: dict[str, Any], erased_at: float) -> bool:
    """Was the stored action triggered at or before the erasure (``erased_at``, seconds)?
    Later ones are the customer's new history, which the erasure leaves alone; so a
    notice read twice (a crash before the offset commit, a re-emission) never cancels
    them. An unreadable trigger instant counts as erased: when in doubt, do not send."""
    try:
        return parse_instant(record["trigger"]["at"]).timestamp() <= erased_at
    except (KeyError, TypeError, ValueError):
        return True


def redacted(state: str, reason: str | None, record: dict[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    """An erased customer's row: state, reason and record as they are to be kept. Not
    sent yet: ``skipped``, reason ``erased``; already settled: its state and reason (the
    sender's own codes), but not an operator's free-text note."""
    kept = {key: record[key] for key in REDACTED_FIELDS if key in record}
    if state == PENDING:
        return SKIPPED, SKIP_ERASED, kept
    if reason is not None and reason.startswith("resolved:"):
        reason = "resolved"
    return state, reason, kept


def prunable(state: str, expires_at: float, cutoff: float) -> bool:
    """A row may go once its action expired before ``cutoff``: read again from Kafka
    (a reset group, a replayed topic), the action is then recorded as expired, never sent."""
    return state in PRUNABLE and expires_at < cutoff


def settle_unconfirmed(rows: Iterable[tuple[str, str]], committed: dict[tuple[str, int], tuple[int, str] | None],
                       ledger_id: str) -> tuple[list[str], list[str]]:
    """Split unconfirmed rows (action id, source ``topic:partition:offset``) into those to
    confirm and those to forget, from the group's committed (offset, metadata) per
    partition. Confirmed: the last commit is this ledger's (``ledger_id``) and past the
    row, so the row's commit went through and nobody else reads it. Forgotten: anything
    else; the commit did not go through (the next holder of the partition reads the row
    again), or another sender committed since, and then which one read the row cannot be
    told: forgetting risks losing it, keeping it risks a second email."""
    confirm: list[str] = []
    forget: list[str] = []
    for action_id, source in rows:
        where = parse_source(source)
        last = None if where is None else committed.get((where[0], where[1]))
        ours = where is not None and last is not None and last[1] == ledger_id and last[0] > where[2]
        (confirm if ours else forget).append(action_id)
    return confirm, forget


def parse_source(source: str) -> tuple[str, int, int] | None:
    """(topic, partition, offset) from a row's ``topic:partition:offset`` source."""
    try:
        topic, partition, offset = source.rsplit(":", 2)
        return topic, int(partition), int(offset)
    except ValueError:
        return None


class LedgerError(Exception):
    """A transition the state machine forbids, or a row in another state than expected."""


def allowed(current: str | None, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


@dataclass(frozen=True)
class Row:
    action_id: str
    customer_id: str
    state: str
    attempts: int
    next_attempt_at: float
    consumed_at: float
    record: dict[str, Any]
    reason: str | None = None
    smtp_code: int | None = None
    smtp_reply: str | None = None

    @property
    def erased(self) -> bool:
        """The customer was erased: the row keeps only its id, state and expiry."""
        return self.customer_id == ERASED_CUSTOMER


_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    action_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    consumed_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    smtp_code INTEGER,
    smtp_reply TEXT,
    source TEXT,
    record BLOB NOT NULL,
    confirmed INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS actions_open ON actions (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS actions_customer ON actions (customer_id);
CREATE TABLE IF NOT EXISTS profiles (
    customer_id TEXT PRIMARY KEY,
    as_of REAL NOT NULL,
    record BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS actions_seen (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS profile_offsets (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""

_ROW_COLUMNS = "action_id, customer_id, state, attempts, next_attempt_at, consumed_at, record, reason, smtp_code, smtp_reply"


def _row(values: Sequence[Any]) -> Row:
    return Row(values[0], values[1], values[2], values[3], values[4], values[5], orjson.loads(values[6]), values[7], values[8], values[9])


class Ledger:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) below.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        # Deleted and overwritten content is zeroed, not left in free pages: an erased
        # customer's data must not stay readable in the file (see ``_drop_old_pages``).
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(actions)")}
        if "confirmed" not in columns:  # a ledger from before 2026-11-28: its rows were all committed
            self._db.execute("ALTER TABLE actions ADD COLUMN confirmed INTEGER NOT NULL DEFAULT 1")
        # This ledger's own id, made once: the sender commits its offsets with it, so it can
        # tell later whether a commit of its own went through (settle_unconfirmed).
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('ledger_id', ?)", (uuid.uuid4().hex,))
            self.ledger_id = str(db.execute("SELECT value FROM meta WHERE key = 'ledger_id'").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def _transaction(self) -> "_Tx":
        return _Tx(self._db)

    # -- actions ---------------------------------------------------------------------

    def record_consumed(self, actions: Iterable[tuple[Action, str]], *, now: float | None = None, confirmed: bool = True,
                        seen: tuple[str, dict[int, int]] | None = None) -> list[str]:
        """Store new actions as pending (durably, on return); returns the ids that were new.
        Ids already in the ledger, in any state, are left alone: a redelivery.

        ``confirmed=False``: the new rows are not sent until :meth:`confirm` (their Kafka
        offsets committed), and :meth:`forget` may delete them. ``seen``: (topic,
        partition -> next offset) this ledger has read up to, kept in the same transaction
        (:meth:`seen_offsets`)."""
        now = time.time() if now is None else now
        new: list[str] = []
        with self._transaction() as db:
            for action, source in actions:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO actions (action_id, customer_id, state, next_attempt_at, consumed_at, updated_at, source, record,"
                    " confirmed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (action.action_id, action.customer_id, PENDING, min(action.not_before, action.expires_at).timestamp(), now, now, source,
                     orjson.dumps(action.record), confirmed),
                )
                if cursor.rowcount:
                    new.append(action.action_id)
            if seen is not None:
                _store_offsets(db, "actions_seen", *seen)
        return new

    def confirm(self, action_ids: Sequence[str]) -> None:
        """The offsets of these actions are committed: they may be sent."""
        with self._transaction() as db:
            db.executemany("UPDATE actions SET confirmed = 1 WHERE action_id = ?", [(action_id,) for action_id in action_ids])

    def unconfirmed(self) -> list[tuple[str, str]]:
        """(action id, source) of the rows not confirmed yet (see :func:`settle_unconfirmed`)."""
        return [(row[0], row[1] or "") for row in self._db.execute("SELECT action_id, source FROM actions WHERE confirmed = 0")]

    def forget(self, action_ids: Sequence[str]) -> None:
        """Delete these unconfirmed rows: whoever holds their partitions reads them again."""
        with self._transaction() as db:
            db.executemany("DELETE FROM actions WHERE action_id = ? AND confirmed = 0", [(action_id,) for action_id in action_ids])


    def seen_offsets(self, topic: str) -> dict[int, int]:
        """partition -> the next offset of ``topic`` this ledger has not read (see
        :meth:`record_consumed`)."""
        return _offsets(self._db, "actions_seen", topic)

    def store_seen_offsets(self, topic: str, offsets: dict[int, int]) -> None:
        with self._transaction() as db:
            _store_offsets(db, "actions_seen", topic, offsets)

    def transition(self, action_id: str, current: str, target: str, *, reason: str | None = None,
                   attempts: int | None = None, next_attempt_at: float | None = None,
                   smtp_code: int | None = None, smtp_reply: str | None = None, now: float | None = None) -> None:
        """Move one action from ``current`` to ``target``, durably, or raise LedgerError."""
        if not allowed(current, target):
            raise LedgerError(f"{action_id}: {current} -> {target} is not a ledger transition")
        now = time.time() if now is None else now
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE actions SET state = ?, reason = COALESCE(?, reason), attempts = COALESCE(?, attempts),"
                " next_attempt_at = COALESCE(?, next_attempt_at), smtp_code = COALESCE(?, smtp_code),"
                " smtp_reply = COALESCE(?, smtp_reply), updated_at = ? WHERE action_id = ? AND state = ?",
                (target, reason, attempts, next_attempt_at, smtp_code, smtp_reply, now, action_id, current),
            )
            if cursor.rowcount != 1:
                raise LedgerError(f"{action_id}: not in state {current}")

    def erase(self, customer_id: str, *, erased_at: float, now: float | None = None) -> list[str]:
        """Forget customer ``customer_id``, erased at ``erased_at`` (seconds), durably, on
        return: their actions triggered until then are redacted (:func:`redacted`), those
        not sent yet cancelled. Returns the ids of the cancelled ones."""
        now = time.time() if now is None else now
        cancelled: list[str] = []
        with self._transaction() as db:
            rows = db.execute("SELECT action_id, state, reason, record FROM actions WHERE customer_id = ?", (customer_id,)).fetchall()
            for action_id, state, reason, record in rows:
                stored = orjson.loads(record)
                if not belongs_to_erased_history(stored, erased_at):
                    continue
                target, kept_reason, kept = redacted(state, reason, stored)
                if target != state and not allowed(state, target):
                    raise LedgerError(f"{action_id}: {state} -> {target} is not a ledger transition")
                db.execute(
                    "UPDATE actions SET customer_id = ?, state = ?, reason = ?, smtp_reply = NULL, record = ?, updated_at = ?"
                    " WHERE action_id = ? AND state = ?",
                    (ERASED_CUSTOMER, target, kept_reason, orjson.dumps(kept), now, action_id, state),
                )
                if target != state:
                    cancelled.append(action_id)
        self._drop_old_pages()
        return cancelled

    def _drop_old_pages(self) -> None:
        """Copy the WAL into the database and empty it: until then the WAL holds the pages
        as they were before an erasure, customer data included. Best effort: a reader in
        the middle of a read (``segments ledger show``) keeps it for this once; the next
        erasure's, or SQLite's own checkpoints, overwrite it."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def recover_in_flight(self, *, now: float | None = None) -> list[str]:
        """At start-up: every ``sending`` row becomes ``unknown`` (see the module docstring)."""
        now = time.time() if now is None else now
        with self._transaction() as db:
            ids = [row[0] for row in db.execute("SELECT action_id FROM actions WHERE state = ?", (SENDING,))]
            db.execute(
                "UPDATE actions SET state = ?, reason = 'in_flight_at_restart', updated_at = ? WHERE state = ?",
                (UNKNOWN, now, SENDING),
            )
        return ids

    def due(self, now: float, *, consumed_before: float, limit: int) -> list[Row]:
        """Pending actions whose time has come, oldest first."""
        cursor = self._db.execute(
            f"SELECT {_ROW_COLUMNS} FROM actions WHERE state = ? AND next_attempt_at <= ? AND consumed_at <= ? AND confirmed = 1"
            " ORDER BY next_attempt_at, action_id LIMIT ?",
            (PENDING, now, consumed_before, limit),
        )
        return [_row(values) for values in cursor]

    def next_attempt_at(self) -> float | None:
        value = self._db.execute("SELECT MIN(next_attempt_at) FROM actions WHERE state = ?", (PENDING,)).fetchone()[0]
        return None if value is None else float(value)

    def newest_pending_consumed_at(self) -> float | None:
        value = self._db.execute("SELECT MAX(consumed_at) FROM actions WHERE state = ?", (PENDING,)).fetchone()[0]
        return None if value is None else float(value)

    def resolve(self, action_id: str, resolution: str, *, note: str, now: float | None = None) -> str:
        """An operator's word on an ``unknown`` action (``RESOLUTIONS``); returns the new state."""
        target = RESOLUTIONS[resolution]
        now = time.time() if now is None else now
        with self._transaction() as db:
            if target == PENDING and db.execute(
                "SELECT 1 FROM actions WHERE action_id = ? AND customer_id = ?", (action_id, ERASED_CUSTOMER)
            ).fetchone():
                raise LedgerError(f"{action_id}: its customer was erased; it is not sent again")
            cursor = db.execute(
                # An erased customer's row takes no free text (the note could name them).
                "UPDATE actions SET state = ?, reason = CASE WHEN customer_id = ? THEN 'resolved' ELSE ? END,"
                " next_attempt_at = CASE WHEN ? THEN ? ELSE next_attempt_at END,"
                " updated_at = ? WHERE action_id = ? AND state = ?",
                (target, ERASED_CUSTOMER, f"resolved: {note}", target == PENDING, now, now, action_id, UNKNOWN),
            )
            if cursor.rowcount != 1:
                current = db.execute("SELECT state FROM actions WHERE action_id = ?", (action_id,)).fetchone()
                raise LedgerError(f"{action_id}: " + ("not in the ledger" if current is None else f"{current[0]}, not unknown"))
        return target

    def prune(self, cutoff: float, *, dry_run: bool = False) -> dict[str, int]:
        """Delete the rows :func:`prunable` before ``cutoff`` (seconds since the epoch);
        returns how many per state."""
        placeholders = ",".join("?" * len(PRUNABLE))
        doomed: list[tuple[str, str]] = []
        for action_id, state, record in self._db.execute(
            f"SELECT action_id, state, record FROM actions WHERE state IN ({placeholders})", tuple(sorted(PRUNABLE)),
        ):
            expires_at = _expires_at(record)
            if expires_at is not None and prunable(state, expires_at, cutoff):
                doomed.append((action_id, state))
        if not dry_run:
            with self._transaction() as db:
                db.executemany("DELETE FROM actions WHERE action_id = ? AND state = ?", doomed)
        return dict(Counter(state for _, state in doomed))

    def get(self, action_id: str) -> Row | None:
        values = self._db.execute(f"SELECT {_ROW_COLUMNS} FROM actions WHERE action_id = ?", (action_id,)).fetchone()
        return None if values is None else _row(values)

    def rows(self, state: str | None = None) -> Iterator[Row]:
        query = f"SELECT {_ROW_COLUMNS} FROM actions" + (" WHERE state = ?" if state else "") + " ORDER BY consumed_at, action_id"
        for values in self._db.execute(query, (state,) if state else ()):
            yield _row(values)

    def has_rows(self) -> bool:
        """Any action row at all (redacted rows count: they hold nothing to erase, but
        telling them apart is not worth a scan)."""
        return self._db.execute("SELECT 1 FROM actions LIMIT 1").fetchone() is not None

    def pending_count(self) -> int:
        # Through the (state, next_attempt_at) index: cheap however long the history.
        return int(self._db.execute("SELECT COUNT(*) FROM actions WHERE state = ?", (PENDING,)).fetchone()[0])

    def counts(self) -> dict[str, int]:
        counts = {state: 0 for state in STATES}
        for state, count in self._db.execute("SELECT state, COUNT(*) FROM actions GROUP BY state"):
            counts[state] = count
        return counts

    # -- profiles ----------------------------------------------------------------------

    def store_profiles(self, topic: str, updates: Iterable[tuple[str, Profile | None]], offsets: dict[int, int]) -> None:
        """Keep the newest profile per customer (``None``: a tombstone deletes it) and the
        next offset to read per partition, in one transaction."""
        deleted = 0
        with self._transaction() as db:
            for customer_id, profile in updates:
                if profile is None:
                    deleted += db.execute("DELETE FROM profiles WHERE customer_id = ?", (customer_id,)).rowcount
                    continue
                # Newest wins: a compacted topic re-read from the start, or two producers,
                # must not put an older profile over a newer one.
                db.execute(
                    "INSERT INTO profiles (customer_id, as_of, record) VALUES (?, ?, ?)"
                    " ON CONFLICT (customer_id) DO UPDATE SET as_of = excluded.as_of, record = excluded.record"
                    " WHERE excluded.as_of >= profiles.as_of",
                    (profile.customer_id, profile.as_of.timestamp(), orjson.dumps(profile.record)),
                )
            _store_offsets(db, "profile_offsets", topic, offsets)
        if deleted:  # a customer erased (the worker's tombstone): nothing of the profile stays
            self._drop_old_pages()

    def profile(self, customer_id: str) -> Profile | None:
        values = self._db.execute("SELECT record FROM profiles WHERE customer_id = ?", (customer_id,)).fetchone()
        return None if values is None else decode_profile(values[0])

    def profile_offsets(self, topic: str) -> dict[int, int]:
        return _offsets(self._db, "profile_offsets", topic)


def _offsets(db: sqlite3.Connection, table: str, topic: str) -> dict[int, int]:
    return {partition: offset for partition, offset in db.execute(f"SELECT partition, next_offset FROM {table} WHERE topic = ?", (topic,))}


def _store_offsets(db: sqlite3.Connection, table: str, topic: str, offsets: dict[int, int]) -> None:
    db.executemany(
        f"INSERT INTO {table} (topic, partition, next_offset) VALUES (?, ?, ?)"
        " ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
        [(topic, partition, next_offset) for partition, next_offset in offsets.items()],
    )


def _expires_at(record: bytes) -> float | None:
    """The stored action's ``expires_at`` (None if unreadable: such a row is kept)."""
    try:
        text = orjson.loads(record).get("expires_at")
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return None


class _Tx:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on error). The write lock is taken
    up front, so a transaction never fails half-way on a lock it could not upgrade."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
