"""``segments ledger``: the email sender's ledger, for operators: what it holds, the
``unknown`` actions to settle by hand, and pruning what is no longer needed.

Safe while the sender runs: the ledger is SQLite in WAL mode, every write a short
transaction that waits for the sender's (``busy_timeout``).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Iterator

import click
import orjson

from stream.cli.context import CliContext
from stream.clients import ConfigError
from stream.core.timeutil import rfc3339_ms
from stream.sender.ledger import STATES, Ledger, LedgerError

LIST_COLUMNS = ("action_id", "customer_id", "state", "reason", "template", "attempts", "consumed_at")
ERASED_LABEL = "(erased)"  # the customer column of a redacted row


@click.group("ledger")
@click.option("--data-dir", type=click.Path(file_okay=False), help="The sender's data_dir (default: the config file's, else .segments/sender).")
@click.option("--print", "demo", is_flag=True, help="The ledger of `segments sender --print` instead.")
@click.pass_context
def ledger_group(context: click.Context, data_dir: str | None, demo: bool) -> None:
    """The email sender's ledger: counts, unknown actions to settle, pruning."""
    from stream.sender.settings import load_sender_settings

    cli: CliContext = context.obj
    try:
        settings = load_sender_settings(cli.config_file, data_dir=data_dir)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    path = settings.ledger_path(demo=demo)
    if not path.is_file():
        raise click.ClickException(f"no ledger at {path} (has the sender run with this data_dir?)")
    context.obj = path


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[Ledger]:
    ledger = Ledger(path)
    try:
        yield ledger
    finally:
        ledger.close()


@ledger_group.command("show")
@click.option("--state", default="unknown", show_default=True,
              type=click.Choice([*STATES, "all"]),
              help="Which actions to list.")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True, help="At most this many (the oldest first).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per action instead of a table.")
@click.pass_obj
def show(path: Path, state: str, limit: int, as_json: bool) -> None:
    """Actions per state, then those in STATE. Email addresses are not in the ledger."""
    with _opened(path) as ledger:
        counts = ledger.counts()
        listed = []
        for row in ledger.rows(None if state == "all" else state):
            if len(listed) >= limit:
                break
            listed.append({
                # An erased customer's row keeps no customer id (README: "Erasure").
                "action_id": row.action_id, "customer_id": None if row.erased else row.customer_id, "erased": row.erased,
                "state": row.state, "reason": row.reason,
                "template": row.record.get("template"), "attempts": row.attempts,
                "consumed_at": rfc3339_ms(int(row.consumed_at * 1000)), "smtp_code": row.smtp_code, "smtp_reply": row.smtp_reply,
            })
    if as_json:
        for item in listed:
            click.echo(orjson.dumps(item).decode())
        return
    click.echo(f"{path}: " + ", ".join(f"{name} {count:,}" for name, count in counts.items()))
    shown = sum(counts.values()) if state == "all" else counts.get(state, 0)
    if not listed:
        click.echo(f"no {state} actions." if state != "all" else "no actions.")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for column in LIST_COLUMNS:
        table.add_column(column, overflow="fold")
    for item in listed:
        cells = {**item, "customer_id": ERASED_LABEL if item["erased"] else item["customer_id"]}
        table.add_row(*("-" if cells[column] is None else str(cells[column]) for column in LIST_COLUMNS))
    Console(width=200).print(table)
    if shown > len(listed):
        click.echo(f"... and {shown - len(listed):,} more (--limit).")


@ledger_group.command("resolve")
@click.argument("action_id")
@click.argument("resolution", type=click.Choice(["sent", "failed", "resend"]))
@click.option("--note", required=True, help="Why, for the record (e.g. what the mail server's log said).")
@click.pass_obj
def resolve(path: Path, action_id: str, resolution: str, note: str) -> None:
    """Settle an `unknown` action (in flight at a crash) once the mail server's logs say
    whether it accepted the message: `sent`; `failed` (not sent, and not to be); `resend`
    (not sent: the sender sends it at its next round, unless it has expired)."""
    with _opened(path) as ledger:
        try:
            state = ledger.resolve(action_id, resolution, note=note)
        except LedgerError as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"{action_id}: unknown -> {state}")


@ledger_group.command("prune")
@click.option("--older-than", "days", type=click.FloatRange(min=1), required=True, metavar="DAYS",
              help="Delete finished actions that expired more than DAYS ago.")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.pass_obj
def prune(path: Path, days: float, dry_run: bool) -> None:
    """Delete sent, skipped, expired and failed actions whose `expires_at` lies more than
    DAYS in the past. Safe: such an action read again from Kafka is recorded as expired,
    never sent. `unknown` actions stay until resolved."""
    with _opened(path) as ledger:
        counts = ledger.prune(time.time() - days * 86_400, dry_run=dry_run)
    total = sum(counts.values())
    detail = ", ".join(f"{state} {count:,}" for state, count in sorted(counts.items())) or "none"
    click.echo(f"{'would delete' if dry_run else 'deleted'} {total:,} action(s): {detail}")
