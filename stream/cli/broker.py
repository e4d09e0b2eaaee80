"""``segments kafka ...``: the local single-node Apache Kafka broker."""

from __future__ import annotations

import sys
import time

import click
import orjson

from stream.broker import KAFKA_VERSION, BrokerError, LocalBroker

# LSB convention for "program is not running", so scripts can test `segments kafka status`.
EXIT_NOT_RUNNING = 3


def _broker() -> LocalBroker:
    return LocalBroker(say=lambda message: click.echo(message, err=True))


@click.group("kafka")
def kafka_group() -> None:
    """Run a local Apache Kafka broker (KRaft, single node) from Maven Central jars.

    Needs Java 17+ (and Maven once, to fetch the jars). Data and jars live in
    ./.segments/kafka (override with SEGMENTS_HOME). With Docker, `docker compose up -d kafka`
    gives the same broker instead.
    """


@kafka_group.command("start")
@click.option("--port", type=click.IntRange(1, 65535), help="Client port (default 9092, or a free one if 9092 is taken).")
@click.option("--controller-port", type=click.IntRange(1, 65535), help="KRaft controller port (default 9093).")
@click.option("--timeout", type=float, default=90.0, show_default=True, help="Seconds to wait for the broker to answer.")
def start(port: int | None, controller_port: int | None, timeout: float) -> None:
    """Start the broker (harmless if it is already running) and print its address."""
    try:
        status = _broker().start(port=port, controller_port=controller_port, timeout=timeout)
    except BrokerError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Kafka {status.version} is up: bootstrap servers {status.bootstrap} (pid {status.pid})", err=True)
    click.echo(f"export KAFKA_BOOTSTRAP_SERVERS={status.bootstrap}")


@kafka_group.command("stop")
def stop() -> None:
    """Shut the broker down cleanly."""
    if _broker().stop():
        click.echo("Kafka stopped.", err=True)
    else:
        click.echo("Kafka was not running.", err=True)


@kafka_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """Say whether the broker is up, on which address, and its pid (exit 3 when down)."""
    current = _broker().status()
    if as_json:
        click.echo(orjson.dumps(current.to_json()).decode())
    elif current.running:
        click.echo(f"running: Kafka {current.version} on {current.bootstrap}, pid {current.pid}, data in {current.data_dir}")
    else:
        click.echo(current.detail)
    if not current.running:
        sys.exit(EXIT_NOT_RUNNING)


@kafka_group.command("logs")
@click.option("-n", "--lines", default=50, show_default=True, help="How many lines from the end.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C to stop).")
def logs(lines: int, follow: bool) -> None:
    """Print the broker's log."""
    broker = _broker()
    click.echo(broker.tail(lines))
    if not follow:
        return
    path = broker.log_file()
    with path.open(errors="replace") as log:
        log.seek(0, 2)
        while True:
            line = log.readline()
            if line:
                click.echo(line, nl=False)
            else:
                time.sleep(0.5)


@kafka_group.command("fetch")
def fetch() -> None:
    """Download the broker's jars from Maven Central now (start does it when needed)."""
    try:
        _broker().fetch()
    except BrokerError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Apache Kafka {KAFKA_VERSION} jars are ready.", err=True)
