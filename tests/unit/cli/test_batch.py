"""`segments batch --rules-change`: the what-if of a new rules file, and its errors."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from stream.cli.main import cli
from stream.rules import Rules, render_rules_toml

ORDERS = [
    {"event_id": f"e{n}", "type": "order", "customer_id": f"c{n}", "occurred_at": "1997-01-01T12:00:00Z",
     "order_id": f"o{n}", "status": "placed", "total": 20, "currency": "USD"}
    for n in range(3)
]


def _files(tmp_path: Path) -> tuple[Path, Path]:
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"".join(orjson.dumps(order) + b"\n" for order in ORDERS))
    tighter = tmp_path / "tighter.toml"
    tighter.write_text(render_rules_toml(Rules.model_validate({"scores": {"recency": {"thresholds": [10, 60, 120, 300]}}})))
    return history, tighter


def _run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_the_changes_the_new_rules_make_are_listed_at_the_instant_of_the_change(tmp_path: Path) -> None:
    history, tighter = _files(tmp_path)
    changes = tmp_path / "changes.jsonl"
    result = _run("batch", str(history), "--until", "1997-03-01", "--out", str(tmp_path / "profiles.jsonl"),
                  "--changes", str(changes), "--rules-change", f"1997-01-20={tighter}")
    assert result.exit_code == 0, result.output
    by_rules = [c for c in map(orjson.loads, changes.read_bytes().splitlines()) if c["cause"] == {"kind": "rules"}]
    assert [(c["customer_id"], c["at"], c["to"]) for c in by_rules] == [
        (f"c{n}", "1997-01-20T00:00:00.000Z", "Promising") for n in range(3)
    ]
    profiles = [orjson.loads(line) for line in (tmp_path / "profiles.jsonl").read_bytes().splitlines()]
    assert {p["rules_version"] for p in profiles} == {Rules.model_validate(
        {"scores": {"recency": {"thresholds": [10, 60, 120, 300]}}}).version}


def test_a_malformed_change_and_rules_the_states_cannot_take_are_refused(tmp_path: Path) -> None:
    history, _ = _files(tmp_path)
    malformed = _run("batch", str(history), "--until", "1997-03-01", "--rules-change", "1997-01-20")
    assert malformed.exit_code == 2
    assert "'1997-01-20' is not INSTANT=FILE" in malformed.output
    berlin = tmp_path / "berlin.toml"
    berlin.write_text(render_rules_toml(Rules(timezone="Europe/Berlin")))
    refused = _run("batch", str(history), "--until", "1997-03-01", "--rules-change", f"1997-01-20={berlin}")
    assert refused.exit_code == 1
    assert f"{berlin}: cannot take over from the rules before it: timezone:" in refused.output
