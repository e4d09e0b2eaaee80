"""``segments rules check|show`` and ``segments calibrate``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from stream.cli.context import CliContext
from stream.cli.history import INSTANT, iter_lines
from stream.core.timeutil import rfc3339_ms
from stream.processing.batch import run_batch
from stream.rules import Rules, RulesError, calibrate, load_rules, render_rules_toml


def _load(path: str | None):
    try:
        return load_rules(path)
    except RulesError as error:
        raise click.ClickException(str(error)) from None


@click.group("rules")
def rules_group() -> None:
    """Validate and print rules files (TOML). The shipped default is the spec's rules."""


@rules_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--worker", "against_worker", is_flag=True,
    help="Also check FILE against the rules the worker's partitions run under (its state on Kafka): "
         "whether a worker started with FILE can carry that state over.",
)
@click.pass_obj
def check(context: CliContext, file: str, against_worker: bool) -> None:
    """Validate FILE: exit 1 with the file, the field and the reason if it is invalid."""
    rules = _load(file)
    click.echo(f"{file}: valid, rules_version {rules.version}")
    if against_worker:
        _check_against_worker(context, file, rules)


def _check_against_worker(context: CliContext, file: str, rules: Rules) -> None:
    from stream.cli.snapshot import partition_records
    from stream.processing.rules_change import incompatibilities
    from stream.worker.settings import load_worker_settings

    app_id = load_worker_settings(context.config_file).app_id
    _, records = partition_records(context.kafka_settings(), app_id)
    if not records:
        click.echo(f"worker {app_id}: no partition state on Kafka yet")
        return
    refused = {
        partition: found for partition, record in sorted(records.items()) if (found := incompatibilities(record, rules))
    }
    if refused:
        partitions = ", ".join(str(partition) for partition in refused)
        raise click.ClickException(
            f"{file}: a worker of {app_id} would stop on partition(s) {partitions}: " + "; ".join(next(iter(refused.values())))
        )
    for version in sorted({record.version for record in records.values()}):
        partitions = ", ".join(str(p) for p, record in sorted(records.items()) if record.version == version)
        if version == rules.version:
            click.echo(f"worker {app_id}: partition(s) {partitions} run under these rules already")
        else:
            click.echo(f"worker {app_id}: partition(s) {partitions} run under {version}; started with {file}, "
                       "the worker moves their customers to these rules (README: Changing the rules)")
    for partition, record in sorted(records.items()):
        if not record.swept and record.version != rules.version:
            click.echo(f"worker {app_id}: partition {partition} is still moving its customers to {record.version}; "
                       f"those not moved yet will pass through {record.version} first, from "
                       f"{rfc3339_ms(record.since or 0)} on")


@rules_group.command("show")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="A rules file; default: the shipped rules.")
def show(rules_file: str | None) -> None:
    """Print the rules in effect, as a complete rules file."""
    rules = _load(rules_file)
    click.echo(f"# rules_version {rules.version}")
    click.echo(render_rules_toml(rules), nl=False)


@click.command("calibrate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--until", type=INSTANT, help="Measure recency at this instant (default: the history's last event).")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Start from these rules (default: shipped).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the proposed rules file here (default: stdout).")
def calibrate_command(files: tuple[str, ...], until: int | None, rules_file: str | None, out: str | None) -> None:
    """Propose R/F/M thresholds as quintiles of a history (classic RFM scoring)."""
    base = _load(rules_file)
    result = run_batch(iter_lines(files), base, until)
    metrics = [(p["recency_days"], p["frequency"], p["monetary"]) for p in result.profiles]
    proposed = calibrate(metrics, base)
    buyers = sum(1 for m in metrics if m[0] is not None)
    text = f"# Calibrated from {buyers} customers with orders in {', '.join(files)}\n" + render_rules_toml(proposed)
    if out:
        Path(out).write_text(text)
        click.echo(f"Wrote {out} (rules_version {proposed.version}).", err=True)
    else:
        sys.stdout.write(text)
