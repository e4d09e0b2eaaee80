"""An erased customer in the sender: the notice decoded, the ledger's rows of the customer
cancelled and redacted (and nothing of them left in the SQLite files), a redelivered
action still not sent, and the customer's new history left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.sender.action import IGNORE_MALFORMED, IGNORE_STATUS, Action, ErasureNotice, Ignored, decode_action, decode_record
from stream.sender.eligibility import decode_profile
from stream.sender.ledger import (
    ERASED_CUSTOMER, PENDING, SENDING, SENT, SKIP_ERASED, SKIPPED, UNKNOWN, Ledger, LedgerError, belongs_to_erased_history, redacted,
)
from tests.unit.sender.helpers import action_id, action_record, encoded, iso, profile_record

ERASED_AT = datetime.now(UTC).replace(microsecond=0)
CUSTOMER = "erased-customer-7f3a"  # searched for in the ledger's files: unlike anything else in them


def notice_record(customer_id: str = CUSTOMER, at: datetime = ERASED_AT, **extra: Any) -> dict[str, Any]:
    record = {
        "kind": "erasure", "action_id": action_id(f"notice-{customer_id}"), "customer_id": customer_id, "status": "erased",
        "playbook": "default", "playbook_version": "p1-0196a7e3a4ba", "change_id": "9a0e4c1b7d2f3e8a6b5c4d3e2f1a0b9c",
        "cause": {"kind": "erasure", "event_id": "erase-0007"}, "at": iso(at), "emitted_at": iso(at),
    }
    record.update(extra)
    return record


def _action(**kwargs: Any) -> Action:
    action = decode_action(encoded(action_record(**kwargs)))
    assert isinstance(action, Action)
    return action


def test_a_notice_is_decoded_and_an_unusable_one_is_malformed() -> None:
    notice = decode_record(encoded(notice_record()))
    assert notice == ErasureNotice(notice_record()["action_id"], CUSTOMER, ERASED_AT)
    for broken in ({"customer_id": ""}, {"at": "soon"}, {"action_id": "x"}, {"cause": {"kind": "erasure"}}):
        ignored = decode_record(encoded({**notice_record(), **broken}))
        assert isinstance(ignored, Ignored) and ignored.reason == IGNORE_MALFORMED, broken
    # Action records still decode as before.
    assert isinstance(decode_record(encoded(action_record())), Action)


def test_a_sender_reading_records_as_actions_ignores_a_notice_rather_than_dead_lettering_it() -> None:
    # decode_action is what the sender used on every record before it knew erasures.
    ignored = decode_action(encoded(notice_record()))
    assert isinstance(ignored, Ignored) and ignored.reason == IGNORE_STATUS


def test_belongs_to_erased_history_is_up_to_and_including_the_erasure() -> None:
    erased_at = ERASED_AT.timestamp()
    assert belongs_to_erased_history(action_record(trigger_at=ERASED_AT), erased_at)
    assert belongs_to_erased_history(action_record(trigger_at=ERASED_AT - timedelta(days=1)), erased_at)
    assert not belongs_to_erased_history(action_record(trigger_at=ERASED_AT + timedelta(milliseconds=1)), erased_at)
    assert belongs_to_erased_history({"trigger": {}}, erased_at)  # unreadable: when in doubt, do not send


def test_redacted_keeps_only_the_id_the_state_and_the_expiry() -> None:
    record = action_record(customer_id=CUSTOMER)
    assert redacted(PENDING, "retrying", record) == (SKIPPED, SKIP_ERASED, {"action_id": record["action_id"], "expires_at": record["expires_at"]})
    assert redacted(SENT, "", record)[:2] == (SENT, "")
    assert redacted(UNKNOWN, "resolved: the relay's log names ann@example.com", record)[:2] == (UNKNOWN, "resolved")


def _ledger_of_an_erased_customer(path: Path, *, new_history: bool = True) -> tuple[Ledger, dict[str, Action]]:
    ledger = Ledger(path)
    before = ERASED_AT - timedelta(hours=1)
    actions = {
        "later": _action(customer_id=CUSTOMER, trigger_at=before, not_before=ERASED_AT + timedelta(hours=24)),  # the 2nd reminder
        "retrying": _action(customer_id=CUSTOMER, trigger_at=before),
        "sent": _action(customer_id=CUSTOMER, trigger_at=before - timedelta(days=2)),
        "in_doubt": _action(customer_id=CUSTOMER, trigger_at=before - timedelta(days=1)),
        "new_history": _action(customer_id=CUSTOMER, trigger_at=ERASED_AT + timedelta(minutes=5)),
        "someone_else": _action(customer_id="another-customer", trigger_at=before),
    }
    if not new_history:
        del actions["new_history"]
    ledger.record_consumed([(action, f"t:0:{n}") for n, action in enumerate(actions.values())], now=100.0)
    ledger.transition(actions["retrying"].action_id, PENDING, PENDING, attempts=1, reason="retrying",
                      smtp_code=451, smtp_reply=f"451 try later, {CUSTOMER}@customers.example")
    ledger.transition(actions["sent"].action_id, PENDING, SENDING, attempts=1)
    ledger.transition(actions["sent"].action_id, SENDING, SENT, reason="", smtp_code=250, smtp_reply="250 queued")
    ledger.transition(actions["in_doubt"].action_id, PENDING, SENDING, attempts=1)
    ledger.transition(actions["in_doubt"].action_id, SENDING, UNKNOWN, reason="no_reply_after_data")
    profile = decode_profile(encoded(profile_record(customer_id=CUSTOMER, as_of=before, last_order_at=before - timedelta(days=9))))
    ledger.store_profiles("profiles", [(CUSTOMER, profile)], {0: 1})
    return ledger, actions


def test_erase_cancels_what_is_not_sent_and_redacts_every_row_of_the_erased_history(tmp_path: Path) -> None:
    ledger, actions = _ledger_of_an_erased_customer(tmp_path / "ledger.sqlite3")
    ids = {name: action.action_id for name, action in actions.items()}
    cancelled = ledger.erase(CUSTOMER, erased_at=ERASED_AT.timestamp(), now=200.0)
    assert sorted(cancelled) == sorted([ids["later"], ids["retrying"]])
    rows = {name: ledger.get(action_id) for name, action_id in ids.items()}
    assert {name: (row.state, row.reason) for name, row in rows.items()} == {  # type: ignore[union-attr]
        "later": (SKIPPED, SKIP_ERASED), "retrying": (SKIPPED, SKIP_ERASED), "sent": (SENT, ""),
        "in_doubt": (UNKNOWN, "no_reply_after_data"), "new_history": (PENDING, None), "someone_else": (PENDING, None),
    }
    for name in ("later", "retrying", "sent", "in_doubt"):
        row = rows[name]
        assert row.erased and row.customer_id == ERASED_CUSTOMER and row.smtp_reply is None  # type: ignore[union-attr]
        assert row.record == {"action_id": ids[name], "expires_at": actions[name].record["expires_at"]}  # type: ignore[union-attr]
    # The customer's new history (after the erasure) and other customers are untouched.
    assert rows["new_history"].record == actions["new_history"].record  # type: ignore[union-attr]
    assert not rows["someone_else"].erased  # type: ignore[union-attr]
    # Nothing cancelled is ever due.
    due = {row.action_id for row in ledger.due(ERASED_AT.timestamp() + 7 * 86_400, consumed_before=1e12, limit=100)}
    assert due == {ids["new_history"], ids["someone_else"]}


def test_after_an_erasure_a_redelivered_action_or_notice_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger, actions = _ledger_of_an_erased_customer(path)
    ledger.erase(CUSTOMER, erased_at=ERASED_AT.timestamp())
    ledger.close()
    ledger = Ledger(path)  # across a restart
    assert ledger.record_consumed([(actions["later"], "t:0:9"), (actions["sent"], "t:0:10")]) == []
    assert ledger.get(actions["later"].action_id).state == SKIPPED  # type: ignore[union-attr]
    assert ledger.erase(CUSTOMER, erased_at=ERASED_AT.timestamp()) == []  # the notice again
    assert ledger.get(actions["new_history"].action_id).state == PENDING  # type: ignore[union-attr]


def test_an_erased_customers_unknown_action_cannot_be_resent(tmp_path: Path) -> None:
    ledger, actions = _ledger_of_an_erased_customer(tmp_path / "ledger.sqlite3")
    ledger.erase(CUSTOMER, erased_at=ERASED_AT.timestamp())
    in_doubt = actions["in_doubt"].action_id
    with pytest.raises(LedgerError, match="erased"):
        ledger.resolve(in_doubt, "resend", note="not in the relay's log")
    assert ledger.resolve(in_doubt, "failed", note=f"bounced for {CUSTOMER}") == "failed"
    assert ledger.get(in_doubt).reason == "resolved"  # type: ignore[union-attr]  # no free text naming anyone


def test_an_erased_customers_rows_are_still_pruned_when_expired(tmp_path: Path) -> None:
    ledger, actions = _ledger_of_an_erased_customer(tmp_path / "ledger.sqlite3")
    ledger.erase(CUSTOMER, erased_at=ERASED_AT.timestamp())
    latest_expiry = max(datetime.fromisoformat(a.record["expires_at"]) for a in actions.values())
    pruned = ledger.prune((latest_expiry + timedelta(days=1)).timestamp())
    assert pruned == {SKIPPED: 2, SENT: 1}  # unknown waits for its resolution; pending ones are not finished


def test_nothing_of_the_erased_customer_stays_in_the_ledgers_files(tmp_path: Path) -> None:
    # No new history: the rows of a customer's life after the erasure keep their id, rightly.
    ledger, _ = _ledger_of_an_erased_customer(tmp_path / "ledger.sqlite3", new_history=False)
    assert _files_mention(tmp_path, CUSTOMER) and _files_mention(tmp_path, "customers.example")

    ledger.erase(CUSTOMER, erased_at=ERASED_AT.timestamp())
    ledger.store_profiles("profiles", [(CUSTOMER, None)], {0: 2})  # the worker's tombstone on customer-profiles
    assert ledger.profile(CUSTOMER) is None
    assert not _files_mention(tmp_path, CUSTOMER)
    assert not _files_mention(tmp_path, "customers.example")  # the SMTP reply that echoed the address
    ledger.close()


def _files_mention(folder: Path, text: str) -> bool:
    return any(text.encode() in path.read_bytes() for path in folder.iterdir() if path.is_file())


def test_a_notice_is_json_the_schema_accepts() -> None:
    from stream.events import validator

    assert list(validator("playbook_erasure_notice").iter_errors(orjson.loads(encoded(notice_record())))) == []
