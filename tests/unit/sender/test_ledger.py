from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stream.sender.action import Action, decode_action
from stream.sender.eligibility import decode_profile
from stream.sender.ledger import (EXPIRED, FAILED, PENDING, SENDING, SENT, SKIPPED, STATES, TERMINAL, TRANSITIONS, UNKNOWN, Ledger,
                                  LedgerError, allowed)
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
