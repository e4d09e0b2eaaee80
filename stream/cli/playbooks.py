"""``segments playbooks run|check|show``: the playbooks app and its files."""

from __future__ import annotations

import click

from stream.cli.context import CliContext
from stream.clients import ConfigError
from stream.clients.topics import TopicSpec, ensure_topics, partitions_of
from stream.playbooks import Playbook, PlaybookError, SuppressionListError, load_playbook, load_suppression
from stream.rules import RulesError, load_rules
from stream.worker.settings import load_playbooks_settings, load_worker_settings, state_dir


def _load_playbook(path: str | None, rules_file: str | None) -> Playbook:
    try:
        return load_playbook(path, rules=load_rules(rules_file))
    except (PlaybookError, RulesError) as error:
        raise click.ClickException(str(error)) from None


@click.group("playbooks")
def playbooks_group() -> None:
    """Turn segment changes into actions (emails, SMS, ad audiences, CRM tasks)."""


@playbooks_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@click.pass_obj
def check(context: CliContext, file: str) -> None:
    """Validate FILE: exit 1 with the file, the field and the reason if it is invalid."""
    playbook = _load_playbook(file, load_worker_settings(context.config_file).rules_file)
    click.echo(f"{file}: valid, playbook {playbook.name!r} version {playbook.version}, {len(playbook.actions)} actions")


@playbooks_group.command("show")
@click.option("--playbook", "playbook_file", type=click.Path(dir_okay=False), help="A playbook file; default: the shipped one.")
@click.pass_obj
def show(context: CliContext, playbook_file: str | None) -> None:
    """List the actions of the playbook in effect: trigger, channel, template, policies."""
    playbook = _load_playbook(playbook_file, load_worker_settings(context.config_file).rules_file)
    click.echo(f"# playbook {playbook.name!r} version {playbook.version}")
    for action in playbook.actions:
        extras = [f"cooldown {action.cooldown_days}d" if action.cooldown_days else "", f"delay {action.delay_hours}h" if action.delay_hours else ""]
        click.echo(f"{action.trigger.describe():40} {action.channel:13} {action.name:45} {' '.join(e for e in extras if e)}")


@playbooks_group.command("run")
@click.option("--playbook", "playbook_file", type=click.Path(dir_okay=False), help="Playbook file (YAML); default: the shipped one.")
@click.option("--suppression-file", type=click.Path(dir_okay=False), help="Customer ids never to contact (one per line).")
@click.option("--act-on-backfill/--no-act-on-backfill", default=None, help="Act on changes from replays and rules changes (default: the playbook's policies.backfill.act).")
@click.option("--processing-guarantee", type=click.Choice(["at_least_once", "exactly_once"]))
@click.option("--data-dir", type=click.Path(file_okay=False), help="Local state (RocksDB). Default .segments/playbooks.")
@click.option("--web-host", help="Address of /healthz, /readyz, /metrics (default 127.0.0.1).")
@click.option("--web-port", type=int, help="Port of the web endpoints (default 6067).")
@click.option("--app-id", help="Consumer group and table prefix (default 'segments-playbooks').")
@click.option("--group-instance-id", help="Static group membership: a name unique to this worker and kept across its restarts (README).")
@click.option("-l", "--loglevel", type=click.Choice(["crit", "error", "warn", "info", "debug"]), default="warn", show_default=True)
@click.pass_obj
def run(context: CliContext, loglevel: str, playbook_file: str | None, suppression_file: str | None, **options) -> None:
    """Run the playbooks app until interrupted: segment changes in, action records out."""
    from stream.cli.worker import recover_after_unclean_stop, run_until_stopped
    from stream.worker.playbooks_app import build_playbooks_app

    try:
        settings = load_playbooks_settings(
            context.config_file, playbook_file=playbook_file, suppression_file=suppression_file, **options
        )
        worker_settings = load_worker_settings(context.config_file)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    playbook = _load_playbook(settings.playbook_file, worker_settings.rules_file)
    if settings.act_on_backfill is not None:
        playbook = playbook.with_backfill_act(settings.act_on_backfill)
    suppressed: frozenset[str] = frozenset()
    if settings.suppression_file:
        try:
            suppressed = load_suppression(settings.suppression_file)
        except SuppressionListError as error:
            raise click.ClickException(str(error)) from None
    kafka = context.kafka_settings()
    changes_topic = settings.topics.segment_changes
    topics = [
        TopicSpec(changes_topic, worker_settings.partitions, worker_settings.replication_factor),
        TopicSpec(settings.topics.actions, worker_settings.partitions, settings.replication_factor),
    ]
    if settings.topics.suppression:
        topics.append(TopicSpec(settings.topics.suppression, 1, settings.replication_factor, {"cleanup.policy": "compact"}))
    ensure_topics(kafka, topics)
    partitions = len(partitions_of(kafka, changes_topic)) or worker_settings.partitions
    click.echo(
        f"segments playbooks: Kafka {kafka.describe()}, playbook {playbook.name!r} {playbook.version}, "
        f"{changes_topic} -> {settings.topics.actions}, {len(suppressed)} suppressed, {settings.processing_guarantee}",
        err=True,
    )
    state = state_dir(settings)
    recover_after_unclean_stop(state)
    app = build_playbooks_app(settings, kafka, playbook, partitions=partitions, suppressed=suppressed)
    run_until_stopped(app, state, loglevel)
