"""``segments snapshot`` and ``segments profile``: customer profiles read from the worker's
table changelogs and evaluated at each partition's clock by the same core. They work
while the worker is down."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson

from stream.cli.context import CliContext
from stream.clients.changelog import ChangelogReader
from stream.clients.topics import partition_counts
from stream.core.profile import profile
from stream.core.state import CustomerState
from stream.core.timeutil import rfc3339_ms
from stream.rules import RulesError, load_rules
from stream.worker.settings import load_worker_settings
from stream.processing.rules_change import RulesRecord
from stream.worker.table_keys import clock_key, partition_of, rules_key


def _read_compacted(kafka, topic: str, partitions: list[int] | None = None) -> dict[tuple[int, bytes], bytes]:
    """Latest value per (partition, key) of a changelog topic, read to its end."""
    with ChangelogReader(kafka, topic, partitions) as reader:
        return reader.read_to_end()


def clocks_changelog(app_id: str) -> str:
    return f"{app_id}-clocks-changelog"


def records_in(clocks_table: dict[tuple[int, bytes], bytes]) -> tuple[dict[int, int], dict[int, RulesRecord]]:
    """Each partition's clock and rules record, from the ``clocks`` table's keys."""
    clocks: dict[int, int] = {}
    rules: dict[int, RulesRecord] = {}
    for (partition, key), value in clocks_table.items():
        if key == clock_key(partition):
            clocks[partition] = int(value)
        elif key == rules_key(partition):
            rules[partition] = RulesRecord.from_bytes(value)
    return clocks, rules


def partition_records(
    kafka, app_id: str, partitions: list[int] | None = None,
) -> tuple[dict[int, int], dict[int, RulesRecord]]:
    """Each partition's clock and rules record, as the worker's ``clocks`` changelog has them."""
    return records_in(_read_compacted(kafka, clocks_changelog(app_id), partitions))


def _profiles(
    context: CliContext, rules_file: str | None, customer_id: str | None = None,
) -> tuple[list[dict], dict[str, int]]:
    """The stored customers' profiles, and the erased customers' erasure instants."""
    settings = load_worker_settings(context.config_file)
    try:
        rules = load_rules(rules_file or settings.rules_file)
    except RulesError as error:
        raise click.ClickException(str(error)) from None
    kafka = context.kafka_settings()
    customers_topic = f"{settings.app_id}-customers-changelog"
    partitions = None
    if customer_id is not None:
        # The app's own count (the config may say otherwise; the worker would refuse it).
        count = partition_counts(kafka, [customers_topic]).get(customers_topic, settings.partitions)
        partitions = [partition_of(customer_id, count)]
    clocks, partition_rules = partition_records(kafka, settings.app_id, partitions)
    for partition, record in sorted(partition_rules.items()):
        if record.version != rules.version:
            # Profiles under other rules than the worker's would be silently wrong.
            raise click.ClickException(
                f"partition {partition} of {settings.app_id} runs under rules {record.version}, not "
                f"{rules_file or settings.rules_file or 'the shipped rules'} ({rules.version}): "
                "pass the worker's rules file with --rules, or set rules_file under [worker] in the config"
            )
    profiles = []
    erased: dict[str, int] = {}
    for (partition, key), value in sorted(_read_compacted(kafka, customers_topic, partitions).items(), key=lambda item: item[0][1]):
        if customer_id is not None and key != customer_id.encode():
            continue
        state = CustomerState.from_bytes(value)
        if state.erased:
            assert state.erased_at is not None
            erased[state.customer_id] = state.erased_at
            continue
        now = max(clocks.get(partition, state.evaluated_at or 0), state.evaluated_at or 0)
        profiles.append(profile(state, now, rules))
    return profiles, erased


@click.command("snapshot")
@click.option("--out", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="The rules the worker runs (default: its config).")
@click.pass_obj
def snapshot(context: CliContext, out: str | None, rules_file: str | None) -> None:
    """One profile per customer (JSON lines), as of each customer's partition clock."""
    profiles, _ = _profiles(context, rules_file)
    handle = Path(out).open("wb") if out else sys.stdout.buffer
    try:
        for item in profiles:
            handle.write(orjson.dumps(item) + b"\n")
    finally:
        if out:
            handle.close()
    click.echo(f"{len(profiles)} customers.", err=True)


@click.command("profile")
@click.argument("customer_id")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False))
@click.pass_obj
def profile_command(context: CliContext, customer_id: str, rules_file: str | None) -> None:
    """Print one customer's profile: metrics, scores, segment and tags."""
    found, erased = _profiles(context, rules_file, customer_id)
    if customer_id in erased:
        raise click.ClickException(f"customer {customer_id!r} was erased at {rfc3339_ms(erased[customer_id])}")
    if not found:
        raise click.ClickException(f"no customer {customer_id!r} in the worker's state")
    click.echo(orjson.dumps(found[0], option=orjson.OPT_INDENT_2).decode())
