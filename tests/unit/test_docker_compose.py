"""docker-compose.yml can't run here (no Docker engine), so check it agrees with the code."""

from __future__ import annotations

import re
from pathlib import Path

import click
import yaml

from stream.broker import KAFKA_VERSION
from stream.broker.local import DEFAULT_PORT, LocalBroker
from stream.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _local_broker_properties(tmp_path: Path) -> dict[str, str]:
    broker = LocalBroker(home=tmp_path)
    broker._write_config(DEFAULT_PORT, DEFAULT_PORT + 1)
    return dict(line.split("=", 1) for line in broker.properties_file.read_text().splitlines() if "=" in line)


def test_kafka_image_is_the_pinned_version() -> None:
    assert COMPOSE["services"]["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    pom = (ROOT / "stream" / "broker" / "pom.xml").read_text()
    assert re.search(r"<kafka.version>(.+?)</kafka.version>", pom).group(1) == KAFKA_VERSION


def test_kafka_port_matches_local_broker() -> None:
    # On loopback, as `segments kafka start` listens.
    assert f"127.0.0.1:{DEFAULT_PORT}:{DEFAULT_PORT}" in COMPOSE["services"]["kafka"]["ports"]


def test_broker_settings_match_local_broker(tmp_path: Path) -> None:
    environment = COMPOSE["services"]["kafka"]["environment"]
    from_compose = {
        key.removeprefix("KAFKA_").lower().replace("_", "."): str(value)
        for key, value in environment.items()
        if key.startswith("KAFKA_")
    }
    local = _local_broker_properties(tmp_path)
    shared = [
        "process.roles",
        "node.id",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "default.replication.factor",
        "min.insync.replicas",
        "group.initial.rebalance.delay.ms",
        "log.cleaner.backoff.ms",
    ]
    for key in shared:
        assert from_compose.get(key) == local[key], key


def test_worker_reaches_an_advertised_listener_and_runs_a_real_command() -> None:
    worker = COMPOSE["services"]["worker"]
    advertised = COMPOSE["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    bootstrap = worker["environment"]["KAFKA_BOOTSTRAP_SERVERS"]
    assert any(listener.endswith(f"//{bootstrap}") for listener in advertised.split(","))
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert cli.get_command(click.Context(cli), worker["command"][0]) is not None, (
        f"`segments {worker['command'][0]}` does not exist"
    )
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["segments"]' in dockerfile
