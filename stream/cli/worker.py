"""``segments worker``: run the stream worker (a faust app) in the foreground."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import click

from stream.cli.collector import settle_collector
from stream.cli.context import CliContext
from stream.clients import ConfigError, KafkaSettings
from stream.clients.topics import TopicSpec, ensure_topics, partition_counts
from stream.rules import RulesError, load_rules
from stream.worker.settings import WorkerSettings, load_worker_settings, state_dir
from stream.worker.table_keys import WORKER_TABLES

log = logging.getLogger("stream.worker")
CLEAN_MARKER = "CLEAN_SHUTDOWN"


@click.command("worker")
@click.option("--clock", type=click.Choice(["wall", "event"]), help="wall: tick from the wall clock (live, default); event: advance only with events and replay ticks.")
@click.option("--processing-guarantee", type=click.Choice(["at_least_once", "exactly_once"]), help="Default at_least_once; exactly_once uses Kafka transactions.")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), help="Rules file (TOML); default: the shipped rules.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Local state (RocksDB). Default .segments/worker.")
@click.option("--partitions", type=int, help="Partitions of the topics the worker creates (default 4).")
@click.option("--web-host", help="Address of the web endpoints (default 127.0.0.1).")
@click.option("--web-port", type=int, help="Port of the web endpoints (default 6066).")
@click.option("--app-id", help="Consumer group and table prefix (default 'segments').")
@click.option("--group-instance-id", help="Static group membership: a name unique to this worker and kept across its restarts (README).")
@click.option("-l", "--loglevel", type=click.Choice(["crit", "error", "warn", "info", "debug"]), default="warn", show_default=True)
@click.pass_obj
def worker(context: CliContext, loglevel: str, rules_file: str | None, **options) -> None:
    """Run the segmentation worker until interrupted (Ctrl-C or SIGTERM stop it cleanly)."""
    from stream.worker.app import build_app

    try:
        settings = load_worker_settings(context.config_file, rules_file=rules_file, **options)
        rules = load_rules(settings.rules_file)
    except (ConfigError, RulesError) as error:
        raise click.ClickException(str(error)) from None
    kafka = context.kafka_settings()
    click.echo(f"segments worker: Kafka {kafka.describe()}, rules {rules.version}, clock {settings.clock}, {settings.processing_guarantee}", err=True)

    ensure_topics(kafka, worker_topics(settings))
    try:
        check_partitions(kafka, settings, context.config_file)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    unclean = recover_after_unclean_stop(state_dir(settings))
    run_until_stopped(build_app(settings, kafka, rules, repair_timers=unclean), state_dir(settings), loglevel)


def run_until_stopped(app, state: Path, loglevel: str) -> None:
    """Run a faust app in the foreground; mark its state folder clean if it stopped
    cleanly (see recover_after_unclean_stop)."""
    import faust

    # Everything imported and built so far lives as long as the process: out of the
    # cyclic collector's full passes, which walked all of it (60-90 ms pauses, the worst
    # latency spikes). See BENCHMARKS.md.
    settle_collector()
    clean = False
    try:
        faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
    except SystemExit as exit_:
        clean = exit_.code in (0, None)
        raise
    finally:
        if clean:
            (state / CLEAN_MARKER).touch()


def worker_topics(settings) -> list[TopicSpec]:
    """Every topic the worker reads or writes, created before faust subscribes: a topic
    that appears after the group's first assignment would be ignored until a rebalance."""
    topics = settings.topics
    plain = [name for name in topics.inputs() if name != topics.erasures]
    plain += [topics.events, topics.dead_letter, topics.segment_changes]
    specs = [TopicSpec(name, settings.partitions, settings.replication_factor) for name in plain]
    # Kept for good: a replay of the input topics must erase the customers again (the
    # requests hold a customer id and an instant, nothing else).
    specs.append(TopicSpec(topics.erasures, settings.partitions, settings.replication_factor, {"retention.ms": "-1"}))
    profiles_configs = {"cleanup.policy": "compact", "max.compaction.lag.ms": str(settings.max_compaction_lag_ms)}
    specs.append(TopicSpec(topics.customer_profiles, settings.partitions, settings.replication_factor, profiles_configs))
    return specs


def check_partitions(kafka: KafkaSettings, settings: WorkerSettings, config_file: str | Path | None) -> None:
    """The app's internal topics must have ``partitions`` partitions: its stored state is
    sharded by customer over them, so a worker started with another count would look
    customers up where they are not (and send to partitions that do not exist)."""
    sharded = [settings.topics.events, *(f"{settings.app_id}-{table}-changelog" for table in WORKER_TABLES)]
    counts = partition_counts(kafka, sharded)
    wrong = [(name, counts[name]) for name in sharded if counts.get(name, settings.partitions) != settings.partitions]
    if wrong:
        name, found = wrong[0]
        raise ConfigError(
            f"{config_file or '--partitions'}: worker.partitions: {settings.partitions}, but {name} has {found} "
            f"partitions: app {settings.app_id} keeps its customers' state sharded over {found} partitions, and an "
            f"app's partitions cannot change; set partitions = {found}, or replay the history into a new app id (--app-id)"
        )


def recover_after_unclean_stop(data_dir: Path) -> bool:
    """After a crash, local RocksDB may hold writes whose changelog records (or whose
    outputs, under exactly-once) never committed. Rebuild from the changelogs instead."""
    marker = data_dir / CLEAN_MARKER
    unclean = data_dir.exists() and any(data_dir.iterdir()) and not marker.exists()
    if unclean:
        click.echo("The last worker run did not stop cleanly: rebuilding local state from the changelogs.", err=True)
        for child in data_dir.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
    data_dir.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    return unclean
