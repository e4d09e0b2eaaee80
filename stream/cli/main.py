"""Entry point of the ``segments`` command (git/kubectl style subcommands)."""

from __future__ import annotations

import logging
import sys

import click

from stream import __version__
from stream.cli.broker import kafka_group
from stream.cli.context import CliContext
from stream.cli.batch import batch
from stream.cli.demo import demo
from stream.cli.lag import lag
from stream.cli.playbooks import playbooks_group
from stream.cli.replay import replay
from stream.cli.sender import sender, smtp_sink
from stream.cli.rules import calibrate_command, rules_group
from stream.cli.snapshot import profile_command, snapshot
from stream.cli.worker import worker


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


cli.add_command(kafka_group)
cli.add_command(worker)
cli.add_command(replay)
cli.add_command(batch)
cli.add_command(snapshot)
cli.add_command(profile_command)
cli.add_command(rules_group)
cli.add_command(calibrate_command)
cli.add_command(demo)
cli.add_command(lag)
cli.add_command(playbooks_group)
cli.add_command(sender)
cli.add_command(smtp_sink)


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
