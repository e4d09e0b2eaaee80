"""The history and rules the change-of-rules integration tests share: the first 400
CDNOW customers, split where the rules change."""

from __future__ import annotations

from pathlib import Path

from stream.core.timeutil import parse_rfc3339_ms
from stream.demo.cdnow import cdnow_orders, time_ordered, write_jsonl
from stream.rules import Rules, render_rules_toml

CHANGE_AT = "1997-06-01T00:00:00Z"
UNTIL = "1998-07-01"
# New recency thresholds and a shorter order window: what a state carries over.
NEW_RULES_FIELDS = {"scores": {"recency": {"thresholds": [14, 45, 120, 300]}}, "window_days": 365}
NEW_RULES = Rules.model_validate(NEW_RULES_FIELDS)


def history_and_new_rules(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """The first 400 CDNOW customers' history, whole and split at CHANGE_AT, and the new
    rules file."""
    events = time_ordered(list(cdnow_orders(limit_customers=400)))
    change_at = parse_rfc3339_ms(CHANGE_AT)
    history, before, after = tmp_path / "all.jsonl", tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    write_jsonl(events, history)
    write_jsonl([e for e in events if parse_rfc3339_ms(e["occurred_at"]) <= change_at], before)
    write_jsonl([e for e in events if parse_rfc3339_ms(e["occurred_at"]) > change_at], after)
    new_rules = tmp_path / "new-rules.toml"
    new_rules.write_text(render_rules_toml(NEW_RULES))
    return history, before, after, new_rules


