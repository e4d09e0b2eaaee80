"""Where the test suite's Kafka broker comes from.

1. ``KAFKA_BOOTSTRAP_SERVERS`` if set: the user's own cluster (or one CI started).
2. Otherwise, when a Docker engine answers: the official ``apache/kafka`` image, the
   same one ``docker-compose.yml`` runs, through testcontainers.
3. Otherwise: the project's local broker (``stream.broker``), in a temporary folder
   on free ports, sharing the project's jar cache.

Each returns a context manager yielding the bootstrap address.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from stream.broker import KAFKA_VERSION, LocalBroker
from stream.broker.local import free_port, metadata_ok

PROJECT_ROOT = Path(__file__).resolve().parents[2]
JAR_CACHE = PROJECT_ROOT / ".segments" / "kafka" / "lib"


def docker_engine_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        client.close()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no usable engine"
        return False


@contextlib.contextmanager
def testcontainers_broker() -> Iterator[str]:
    import time

    from testcontainers.core.container import DockerContainer

    port = free_port()
    container = (
        DockerContainer(f"apache/kafka:{KAFKA_VERSION}")
        .with_bind_ports(9092, port)
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_LISTENERS", "PLAINTEXT://:9092,CONTROLLER://:9093")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{port}")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT")
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
        .with_env("KAFKA_LOG_CLEANER_BACKOFF_MS", "1000")
    )
    with container:
        bootstrap = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while not metadata_ok(bootstrap):
            if time.monotonic() > deadline:
                raise RuntimeError("the Kafka container did not answer within 90 s")
            time.sleep(0.5)
        yield bootstrap


@contextlib.contextmanager
def local_broker(home: Path) -> Iterator[str]:
    broker = LocalBroker(home=home, lib_dir=JAR_CACHE)
    status = broker.start(port=free_port(), controller_port=free_port())
    try:
        assert status.bootstrap
        yield status.bootstrap
    finally:
        broker.stop()


@contextlib.contextmanager
def provide_broker(tmp_home: Path) -> Iterator[str]:
    explicit = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if explicit:
        yield explicit
    elif docker_engine_answers():
        with testcontainers_broker() as bootstrap:
            yield bootstrap
    else:
        with local_broker(tmp_home) as bootstrap:
            yield bootstrap
