"""`segments ledger` on a real SQLite ledger: show, resolve, prune, and clear errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from click.testing import CliRunner

from stream.cli.main import cli
from stream.sender.action import Action, decode_action
from stream.sender.ledger import PENDING, SENDING, SENT, Ledger
from tests.unit.sender.helpers import action_record, encoded


def _ledger_with(tmp_path: Path) -> tuple[Path, dict[str, Action]]:
    now = datetime.now(UTC)
    actions = {
        name: decode_action(encoded(action_record(customer_id=name, **kwargs)))
        for name, kwargs in {"lost": {}, "old": {"expires_at": now - timedelta(days=60)}, "waiting": {}}.items()
    }
    ledger = Ledger(tmp_path / "sender" / "ledger.sqlite3")
    ledger.record_consumed([(action, f"t:0:{n}") for n, action in enumerate(actions.values())])  # type: ignore[misc]
    ledger.transition(actions["lost"].action_id, PENDING, SENDING)
    ledger.transition(actions["old"].action_id, PENDING, SENDING)
    ledger.transition(actions["old"].action_id, SENDING, SENT)
    ledger.recover_in_flight()
    ledger.close()
    return tmp_path / "sender", actions  # type: ignore[return-value]


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_show_counts_and_lists_the_unknown_actions(tmp_path: Path) -> None:
    data_dir, actions = _ledger_with(tmp_path)
    code, output = _run("ledger", "--data-dir", str(data_dir), "show")
    assert code == 0
    assert "pending 1" in output and "sent 1" in output and "unknown 1" in output
    assert actions["lost"].action_id in output and actions["waiting"].action_id not in output
    code, output = _run("ledger", "--data-dir", str(data_dir), "show", "--state", "all", "--json")
    rows = [orjson.loads(line) for line in output.splitlines()]
    assert code == 0 and {row["customer_id"]: row["state"] for row in rows} == {"lost": "unknown", "old": "sent", "waiting": "pending"}
    assert all("email" not in key for row in rows for key in row)


def test_resolve_settles_an_unknown_action_once(tmp_path: Path) -> None:
    data_dir, actions = _ledger_with(tmp_path)
    lost = actions["lost"].action_id
    code, output = _run("ledger", "--data-dir", str(data_dir), "resolve", lost, "resend", "--note", "not in the relay's log")
    assert code == 0 and output.strip() == f"{lost}: unknown -> pending"
    code, output = _run("ledger", "--data-dir", str(data_dir), "resolve", lost, "sent", "--note", "again")
    assert code == 1 and f"{lost}: pending, not unknown" in output


def test_prune_deletes_only_what_expired_long_ago(tmp_path: Path) -> None:
    data_dir, actions = _ledger_with(tmp_path)
    code, output = _run("ledger", "--data-dir", str(data_dir), "prune", "--older-than", "30", "--dry-run")
    assert code == 0 and output.strip() == "would delete 1 action(s): sent 1"
    code, output = _run("ledger", "--data-dir", str(data_dir), "prune", "--older-than", "30")
    assert code == 0 and output.strip() == "deleted 1 action(s): sent 1"
    ledger = Ledger(data_dir / "ledger.sqlite3")
    assert {row.customer_id for row in ledger.rows()} == {"lost", "waiting"}
    ledger.close()


def test_a_missing_ledger_is_a_clear_error_and_creates_nothing(tmp_path: Path) -> None:
    code, output = _run("ledger", "--data-dir", str(tmp_path / "nowhere"), "show")
    assert code == 1 and "no ledger at" in output and not (tmp_path / "nowhere").exists()


def test_show_marks_an_erased_customers_rows_and_never_names_them(tmp_path: Path) -> None:
    data_dir, actions = _ledger_with(tmp_path)
    ledger = Ledger(data_dir / "ledger.sqlite3")
    ledger.erase("waiting", erased_at=datetime.now(UTC).timestamp())
    ledger.close()
    code, output = _run("ledger", "--data-dir", str(data_dir), "show", "--state", "all", "--json")
    rows = {row["action_id"]: row for row in map(orjson.loads, output.splitlines())}
    waiting = rows[actions["waiting"].action_id]
    assert code == 0 and (waiting["customer_id"], waiting["erased"], waiting["state"], waiting["reason"]) == (None, True, "skipped", "erased")
    assert rows[actions["lost"].action_id]["erased"] is False
    code, output = _run("ledger", "--data-dir", str(data_dir), "show", "--state", "skipped")
    assert code == 0 and "(erased)" in output and "waiting" not in output
