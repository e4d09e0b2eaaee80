"""``segments batch``: profiles and changes from a history file, without Kafka."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import orjson

from stream.cli.collector import settle_collector
from stream.cli.history import INSTANT, iter_lines
from stream.core.events import DEFAULT_MAX_EVENT_LEAD_SECONDS
from stream.processing.batch import run_batch
from stream.processing.rules_change import incompatibilities, record_for
from stream.rules import Rules, RulesError, load_rules


class RulesChangeType(click.ParamType):
    """``INSTANT=FILE``: the rules in FILE take over at INSTANT."""

    name = "INSTANT=FILE"

    def convert(self, value, param, ctx):  # type: ignore[override]
        if isinstance(value, tuple):
            return value
        instant, separator, path = value.partition("=")
        if not separator or not path:
            self.fail(f"{value!r} is not INSTANT=FILE (e.g. 1998-03-01=calibrated.toml)", param, ctx)
        try:
            return INSTANT.convert(instant, param, ctx), path
        except click.BadParameter as error:
            self.fail(f"{value!r}: {error.message}", param, ctx)


@click.command("batch")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--until", type=INSTANT, required=True, help="Evaluate everyone at this instant (a final clock tick).")
@click.option("--out", type=click.Path(dir_okay=False), help="Profiles, one JSON object per line (default: stdout).")
@click.option("--changes", "changes_file", type=click.Path(dir_okay=False), help="Write the segment/tag changes here (JSON lines).")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Rules file; default: the shipped rules.")
@click.option(
    "--rules-change", "rules_changes", type=RulesChangeType(), multiple=True,
    help="INSTANT=FILE: the rules in FILE take over at INSTANT, as in a worker restarted with them after a "
         "replay --until INSTANT (repeatable).",
)
@click.option(
    "--max-event-lead", "max_event_lead", type=float, default=DEFAULT_MAX_EVENT_LEAD_SECONDS, show_default=True,
    help="Reject events that occurred more than this many seconds after now, as the worker rejects those "
         "after their message's publication (max_event_lead_seconds).",
)
def batch(
    files: tuple[str, ...], until: int, out: str | None, changes_file: str | None, rules_file: str | None,
    rules_changes: tuple[tuple[int, str], ...], max_event_lead: float,
) -> None:
    """Compute the worker's profiles and change list from FILES through the same core."""
    try:
        rules = load_rules(rules_file)
        later: list[tuple[int, Rules]] = [(instant, load_rules(path)) for instant, path in rules_changes]
    except RulesError as error:
        raise click.ClickException(str(error)) from None
    # run_batch would refuse them too, but only once it got there in the history, and
    # without the file's name.
    previous = rules
    for (_, path), (_, changed) in sorted(zip(rules_changes, later), key=lambda pair: pair[0][0]):
        problems = incompatibilities(record_for(previous), changed)
        if problems:
            raise click.ClickException(f"{path}: cannot take over from the rules before it: " + "; ".join(problems))
        previous = changed
    settle_collector()  # it holds every customer's state until the end
    result = run_batch(
        iter_lines(files), rules, until, later,
        published_at_ms=time.time_ns() // 1_000_000, max_lead_ms=round(max_event_lead * 1000),
    )
    _write_lines(out, (orjson.dumps(profile) for profile in result.profiles))
    if changes_file:
        _write_lines(changes_file, (orjson.dumps(change.to_json_dict()) for change in result.changes))
    rejected = sum(result.rejected.values())
    summary = f"{result.events} events, {len(result.profiles)} customers, {len(result.changes)} changes"
    if rejected:
        summary += f", {rejected} rejected (" + ", ".join(f"{reason}: {n}" for reason, n in sorted(result.rejected.items())) + ")"
    click.echo(summary, err=True)


def _write_lines(path: str | None, lines) -> None:
    if path is None:
        for line in lines:
            sys.stdout.buffer.write(line + b"\n")
        return
    with Path(path).open("wb") as handle:
        for line in lines:
            handle.write(line + b"\n")
