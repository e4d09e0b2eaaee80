"""The sender prunes its ledger by itself (prune_after_days), once an hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from stream.clients import KafkaSettings
from stream.sender.action import Action, decode_action
from stream.sender.ledger import PENDING, SKIPPED, Ledger
from stream.sender.metrics import SenderMetrics
from stream.sender.runner import PRUNE_EVERY_SECONDS, Sender
from stream.sender.settings import SenderSettings
from tests.unit.sender.helpers import action_record, encoded


def sender(tmp_path: Path, clock: list[float], **settings) -> Sender:
    # Pruning needs neither Kafka nor SMTP: those parts are never reached here.
    return Sender(
        SenderSettings(**settings), KafkaSettings(), transport=None, renderer=None, contacts=None,  # type: ignore[arg-type]
        ledger=Ledger(tmp_path / "ledger.sqlite3"), metrics=SenderMetrics(), group_id="g", clock=lambda: clock[0],
    )


def skipped_action(ledger: Ledger, expired_days_ago: float) -> str:
    action = decode_action(encoded(action_record(expires_at=datetime.now(UTC) - timedelta(days=expired_days_ago))))
    assert isinstance(action, Action)
    ledger.record_consumed([(action, "t:0:0")])
    ledger.transition(action.action_id, PENDING, SKIPPED, reason="no_contact")
    return action.action_id


def test_finished_actions_leave_the_ledger_after_prune_after_days_checked_hourly(tmp_path: Path) -> None:
    clock = [datetime.now(UTC).timestamp()]
    running = sender(tmp_path, clock, prune_after_days=30)
    old, recent = skipped_action(running.ledger, 31), skipped_action(running.ledger, 30 - 10 / 1440)  # 10 min short
    assert running.prune_if_due() == {SKIPPED: 1}
    assert running.ledger.get(old) is None and running.ledger.get(recent) is not None
    assert running.metrics.pruned.labels(SKIPPED)._value.get() == 1
    clock[0] += 30 * 60  # the recent one is past its 30 days now, but the hour since the
    assert running.prune_if_due() == {}  # last prune has not gone by
    clock[0] += PRUNE_EVERY_SECONDS
    assert running.prune_if_due() == {SKIPPED: 1} and running.ledger.get(recent) is None


def test_pruning_can_be_left_to_the_operator(tmp_path: Path) -> None:
    clock = [datetime.now(UTC).timestamp()]
    manual = sender(tmp_path, clock, prune_after_days=0)
    kept = skipped_action(manual.ledger, 400)
    assert manual.prune_if_due() == {} and manual.ledger.get(kept) is not None
