import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from stream.sender.action import Action, decode_action
from stream.sender.eligibility import Expired, decode_profile, timing
from stream.sender.ledger import (EXPIRED, FAILED, PENDING, SENDING, SENT, SKIPPED, STATES, TERMINAL, TRANSITIONS, UNKNOWN, Ledger,
                                  LedgerError, allowed, settle_unconfirmed)
from tests.unit.sender.helpers import action_record, encoded, profile_record


def _action(**kwargs) -> Action:
    action = decode_action(encoded(action_record(**kwargs)))
    assert isinstance(action, Action)
    return action


def test_state_machine() -> None:
    assert set(TRANSITIONS) == {None, *STATES}
    assert allowed(None, PENDING) and not allowed(None, SENDING) and not allowed(None, SENT)
    # Nothing reaches "sent" without passing "sending", and nothing leaves a terminal state.
    assert [state for state, targets in TRANSITIONS.items() if SENT in targets] == [SENDING]
    assert all(not TRANSITIONS[state] for state in TERMINAL)
    # In-flight actions are never put back to be sent blindly... except after a refusal.
    assert TRANSITIONS[SENDING] == {SENT, PENDING, FAILED, UNKNOWN}
    assert not allowed(SENDING, SKIPPED) and not allowed(SENDING, EXPIRED)


def test_consumed_actions_are_recorded_once(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    first, second = _action(), _action()
    assert ledger.record_consumed([(first, "t:0:0"), (second, "t:0:1")], now=100.0) == [first.action_id, second.action_id]
    ledger.transition(first.action_id, PENDING, SKIPPED, reason="no_contact")
    # A redelivery (crash before the offset commit) changes nothing, whatever the state.
    assert ledger.record_consumed([(first, "t:0:0"), (second, "t:0:1")], now=200.0) == []
    assert ledger.get(first.action_id).state == SKIPPED  # type: ignore[union-attr]
    assert ledger.get(second.action_id).consumed_at == 100.0  # type: ignore[union-attr]


def test_transitions_check_the_current_state(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    action = _action()
    ledger.record_consumed([(action, "t:0:0")])
    with pytest.raises(LedgerError, match="not a ledger transition"):
        ledger.transition(action.action_id, PENDING, SENT)
    with pytest.raises(LedgerError, match="not in state sending"):
        ledger.transition(action.action_id, SENDING, SENT)
    ledger.transition(action.action_id, PENDING, SENDING, attempts=1)
    ledger.transition(action.action_id, SENDING, SENT, smtp_code=250, smtp_reply="OK")
    row = ledger.get(action.action_id)
    assert row is not None and (row.state, row.attempts, row.smtp_code) == (SENT, 1, 250)
    with pytest.raises(LedgerError):
        ledger.transition(action.action_id, SENT, PENDING)


def test_a_restart_turns_sending_into_unknown_never_pending(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(path)
    in_flight, waiting = _action(), _action()
    ledger.record_consumed([(in_flight, "t:0:0"), (waiting, "t:0:1")])
    ledger.transition(in_flight.action_id, PENDING, SENDING, attempts=1)
    ledger.close()  # what a crash leaves: committed rows only

    reopened = Ledger(path)
    assert reopened.recover_in_flight() == [in_flight.action_id]
    assert reopened.get(in_flight.action_id).state == UNKNOWN  # type: ignore[union-attr]
    assert reopened.get(waiting.action_id).state == PENDING  # type: ignore[union-attr]
    assert reopened.recover_in_flight() == []
    assert [row.action_id for row in reopened.due(10**10, consumed_before=10**10, limit=10)] == [waiting.action_id]


def test_due_respects_time_the_profile_horizon_and_the_limit(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    now = datetime.now(UTC)
    early = _action(not_before=now - timedelta(hours=2))
    late = _action(not_before=now - timedelta(hours=1))
    future = _action(not_before=now + timedelta(hours=1))
    ledger.record_consumed([(late, "a"), (future, "b")], now=1000.0)
    ledger.record_consumed([(early, "c")], now=2000.0)
    at = now.timestamp()
    assert [r.action_id for r in ledger.due(at, consumed_before=5000.0, limit=10)] == [early.action_id, late.action_id]
    assert [r.action_id for r in ledger.due(at, consumed_before=1500.0, limit=10)] == [late.action_id]
    assert [r.action_id for r in ledger.due(at, consumed_before=5000.0, limit=1)] == [early.action_id]
    assert ledger.next_attempt_at() == pytest.approx(early.not_before.timestamp())
    assert ledger.newest_pending_consumed_at() == 2000.0
    ledger.transition(late.action_id, PENDING, PENDING, attempts=1, next_attempt_at=at + 60)
    assert [r.action_id for r in ledger.due(at, consumed_before=5000.0, limit=10)] == [early.action_id]
    assert ledger.counts()[PENDING] == 3


def test_an_action_expiring_before_its_quiet_hours_end_comes_due_at_expiry(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    now = datetime.now(UTC)
    action = _action(not_before=now + timedelta(hours=5), expires_at=now + timedelta(hours=1))
    ledger.record_consumed([(action, "a")])
    assert ledger.next_attempt_at() == pytest.approx(action.expires_at.timestamp())


def test_profiles_keep_the_newest_and_their_offsets(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(path)
    t = datetime(2024, 3, 1, tzinfo=UTC)
    newer = decode_profile(encoded(profile_record(as_of=t + timedelta(days=1), segment="Lost", last_order_at=t - timedelta(days=400))))
    older = decode_profile(encoded(profile_record(as_of=t, segment="At Risk", last_order_at=t - timedelta(days=100))))
    ledger.store_profiles("profiles", [("cust-1", newer)], {0: 5})
    ledger.store_profiles("profiles", [("cust-1", older)], {0: 6, 1: 2})
    assert ledger.profile("cust-1").segment == "Lost"  # type: ignore[union-attr]
    assert ledger.profile_offsets("profiles") == {0: 6, 1: 2}
    ledger.close()
    reopened = Ledger(path)
    assert reopened.profile("cust-1").segment == "Lost"  # type: ignore[union-attr]
    reopened.store_profiles("profiles", [("cust-1", None)], {0: 7})  # a tombstone
    assert reopened.profile("cust-1") is None and reopened.profile_offsets("profiles")[0] == 7


def test_an_unknown_action_is_resolved_once_and_only_from_unknown(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    lost, sent, resend = _action(), _action(), _action()
    ledger.record_consumed([(lost, "t:0:0"), (sent, "t:0:1"), (resend, "t:0:2")], now=100.0)
    for action in (lost, sent, resend):
        ledger.transition(action.action_id, PENDING, SENDING)
    assert sorted(ledger.recover_in_flight(now=200.0)) == sorted(a.action_id for a in (lost, sent, resend))
    assert ledger.resolve(lost.action_id, "failed", note="rejected in the relay's log", now=300.0) == FAILED
    assert ledger.resolve(sent.action_id, "sent", note="250 in the relay's log", now=300.0) == SENT
    assert ledger.resolve(resend.action_id, "resend", note="never reached the relay", now=300.0) == PENDING
    row = ledger.get(resend.action_id)
    assert row.reason == "resolved: never reached the relay" and row.next_attempt_at == 300.0  # type: ignore[union-attr]
    # Due again at the sender's next round.
    assert [r.action_id for r in ledger.due(400.0, consumed_before=400.0, limit=10)] == [resend.action_id]
    with pytest.raises(LedgerError, match="sent, not unknown"):
        ledger.resolve(sent.action_id, "resend", note="twice")
    with pytest.raises(LedgerError, match="not in the ledger"):
        ledger.resolve("act-nope", "sent", note="typo")


def test_prune_deletes_finished_actions_that_expired_before_the_cutoff(tmp_path: Path) -> None:
    from stream.sender.ledger import prunable

    now = datetime.now(UTC)
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    old_sent = _action(expires_at=now - timedelta(days=40))
    old_unknown = _action(expires_at=now - timedelta(days=40))
    old_pending = _action(expires_at=now - timedelta(days=40))
    recent_sent = _action(expires_at=now - timedelta(days=5))
    ledger.record_consumed([(a, f"t:0:{n}") for n, a in enumerate((old_sent, old_unknown, old_pending, recent_sent))], now=1.0)
    for action in (old_sent, recent_sent):
        ledger.transition(action.action_id, PENDING, SENDING, now=2.0)
        ledger.transition(action.action_id, SENDING, SENT, now=3.0)
    ledger.transition(old_unknown.action_id, PENDING, SENDING, now=2.0)
    ledger.recover_in_flight(now=3.0)
    cutoff = (now - timedelta(days=30)).timestamp()
    assert ledger.prune(cutoff, dry_run=True) == {SENT: 1}
    assert ledger.get(old_sent.action_id) is not None
    assert ledger.prune(cutoff) == {SENT: 1}
    assert ledger.get(old_sent.action_id) is None
    # Unknown waits for a resolution; pending is not finished; the recent one has not expired long enough.
    assert {r.action_id for r in ledger.rows()} == {old_unknown.action_id, old_pending.action_id, recent_sent.action_id}
    assert ledger.prune(cutoff) == {}
    assert not prunable(UNKNOWN, 0.0, cutoff) and not prunable(PENDING, 0.0, cutoff) and prunable(EXPIRED, cutoff - 1, cutoff)
    # Read again from Kafka after the prune, the action is new to the ledger, but expired:
    # the sender records it so and sends nothing.
    assert ledger.record_consumed([(old_sent, "t:0:0")], now=4.0) == [old_sent.action_id]
    assert isinstance(timing(old_sent, now), Expired)


def test_an_unconfirmed_action_is_not_sent_until_confirmed_and_can_be_forgotten(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    kept, dropped = _action(), _action()
    new = ledger.record_consumed([(kept, "actions:0:7"), (dropped, "actions:1:3")], now=100.0, confirmed=False,
                                 seen=("actions", {0: 8, 1: 4}))
    assert new == [kept.action_id, dropped.action_id]
    assert ledger.due(10**10, consumed_before=10**10, limit=10) == []  # read, but its offset not committed yet
    assert sorted(ledger.unconfirmed()) == sorted([(kept.action_id, "actions:0:7"), (dropped.action_id, "actions:1:3")])
    assert ledger.seen_offsets("actions") == {0: 8, 1: 4} and ledger.seen_offsets("other") == {}
    ledger.confirm([kept.action_id])
    ledger.forget([dropped.action_id, kept.action_id])  # only unconfirmed rows go
    assert [row.action_id for row in ledger.due(10**10, consumed_before=10**10, limit=10)] == [kept.action_id]
    assert ledger.get(dropped.action_id) is None and ledger.unconfirmed() == []
    # Read again (it was not committed): it comes back as new.
    assert ledger.record_consumed([(dropped, "actions:1:3")], confirmed=False) == [dropped.action_id]


def test_unconfirmed_rows_are_confirmed_only_when_this_ledgers_commit_went_past_them() -> None:
    rows = [("a", "actions:0:5"), ("b", "actions:0:9"), ("c", "actions:1:2"), ("d", "actions:2:0"), ("e", "garbage")]
    committed = {("actions", 0): (6, "me"), ("actions", 1): (10, "someone-else"), ("actions", 2): None}
    confirm, forget = settle_unconfirmed(rows, committed, "me")
    # a: committed past it by this ledger. b: the commit stopped before it. c: another sender
    # committed since (it may have read c). d: nothing committed. e: unreadable.
    assert (confirm, forget) == (["a"], ["b", "c", "d", "e"])


def test_a_ledger_from_before_confirmations_opens_with_its_rows_confirmed(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    old = sqlite3.connect(path)
    action = _action()
    old.executescript(
        "CREATE TABLE actions (action_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, state TEXT NOT NULL, reason TEXT,"
        " attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL, consumed_at REAL NOT NULL, updated_at REAL NOT NULL,"
        " smtp_code INTEGER, smtp_reply TEXT, source TEXT, record BLOB NOT NULL);"
    )
    old.execute("INSERT INTO actions (action_id, customer_id, state, next_attempt_at, consumed_at, updated_at, source, record)"
                " VALUES (?, ?, 'pending', 0, 0, 0, 't:0:0', ?)", (action.action_id, action.customer_id, orjson.dumps(action.record)))
    old.commit()
    old.close()
    ledger = Ledger(path)
    assert [row.action_id for row in ledger.due(10**10, consumed_before=10**10, limit=10)] == [action.action_id]
    first_id = ledger.ledger_id
    ledger.close()
    assert Ledger(path).ledger_id == first_id and len(first_id) == 32  # made once, kept
    assert Ledger(tmp_path / "other.sqlite3").ledger_id != first_id
