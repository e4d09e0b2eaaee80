"""Entry point of the ``segments`` command (git/kubectl style subcommands)."""

from __future__ import annotations

import importlib
import logging
import sys

import click

from stream import __version__
from stream.cli.context import CliContext

# Each subcommand's module, imported only when that subcommand runs (or for --help):
# importing all of them pulls in faust, aiokafka and the worker's RocksDB code, about a
# second before `segments replay` or `segments rules check` could start.
SUBCOMMANDS = {
    "batch": "stream.cli.batch:batch",
    "calibrate": "stream.cli.rules:calibrate_command",
    "demo": "stream.cli.demo:demo",
    "erase": "stream.cli.erase:erase",
    "kafka": "stream.cli.broker:kafka_group",
    "lag": "stream.cli.lag:lag",
    "ledger": "stream.cli.ledger:ledger_group",
    "playbooks": "stream.cli.playbooks:playbooks_group",
    "profile": "stream.cli.snapshot:profile_command",
    "replay": "stream.cli.replay:replay",
    "rules": "stream.cli.rules:rules_group",
    "sender": "stream.cli.sender:sender",
    "smtp-sink": "stream.cli.sender:smtp_sink",
    "snapshot": "stream.cli.snapshot:snapshot",
    "worker": "stream.cli.worker:worker",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click's documented
    lazy-loading pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(SUBCOMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = SUBCOMMANDS[cmd_name].split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command) or command.name != cmd_name:
            raise RuntimeError(f"{SUBCOMMANDS[cmd_name]} is not the {cmd_name!r} command")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="segments")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    envvar="SEGMENTS_CONFIG",
    help="Config file (TOML) with a [kafka] table; default ./segments.toml if present.",
)
@click.option(
    "--bootstrap-servers",
    envvar="KAFKA_BOOTSTRAP_SERVERS",
    help="Kafka bootstrap servers (host:port,...). Default: the local broker, else 127.0.0.1:9092.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(context: click.Context, config_file: str | None, bootstrap_servers: str | None, verbose: int) -> None:
    """Real-time RFM customer segmentation on Kafka.

    Start a local broker with `segments kafka start`, or point at your own cluster
    with KAFKA_BOOTSTRAP_SERVERS (SASL/SSL via KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*,
    KAFKA_SSL_* or the [kafka] table of the config file).
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if verbose < 2:
        # kafka-python logs every refused connection while a broker comes up.
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    context.obj = CliContext(config_file=config_file, bootstrap_servers=bootstrap_servers)


def main() -> None:
    from kafka.errors import KafkaError

    from stream.clients.topics import TopicsNotReady

    try:
        cli(prog_name="segments")
    except KeyboardInterrupt:
        sys.exit(130)
    except (KafkaError, TopicsNotReady) as error:
        # A broker that can't be reached or isn't ready is the user's situation to fix,
        # not a bug: one line instead of a traceback through kafka-python.
        click.echo(f"segments: Kafka: {error}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
