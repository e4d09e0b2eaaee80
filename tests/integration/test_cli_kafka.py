"""`segments kafka start|status|logs|stop` as a user runs them: real processes, a real broker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from stream.broker.local import _process_alive, free_port
from tests.support.brokers import JAR_CACHE

pytestmark = pytest.mark.integration
SEGMENTS = str(Path(sys.executable).with_name("segments"))


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SEGMENTS_HOME": str(home), "SEGMENTS_KAFKA_LIB": str(JAR_CACHE)}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    return subprocess.run([SEGMENTS, "kafka", *args], env=env, capture_output=True, text=True, timeout=180)


def test_local_broker_lifecycle(tmp_path: Path, kafka_bootstrap: str) -> None:
    # kafka_bootstrap makes sure the jar cache exists; this test runs a second, separate broker.
    home = tmp_path / "home"
    first = run(home, "status")
    assert first.returncode == 3 and "not running" in first.stdout

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        refused = run(home, "start", "--port", str(taken))
    assert refused.returncode == 1
    assert f"port {taken} is already in use" in refused.stderr
    assert "Traceback" not in refused.stderr

    port = free_port()
    started = run(home, "start", "--port", str(port), "--controller-port", str(free_port()))
    try:
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == f"export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{port}"

        again = run(home, "start")
        assert again.returncode == 0 and "already running" in again.stderr

        status = run(home, "status", "--json")
        assert status.returncode == 0
        described = orjson.loads(status.stdout)
        assert described["running"] and described["bootstrap"] == f"127.0.0.1:{port}" and described["pid"] > 0

        producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{port}")
        producer.send("cli-lifecycle", b"hello").get(timeout=30)
        producer.close()

        logs = run(home, "logs", "-n", "400")
        assert "Kafka Server started" in logs.stdout
    finally:
        stopped = run(home, "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stderr
    after = run(home, "status")
    assert after.returncode == 3
    # Gone (or a zombie waiting for a parent that never reaps it, as in some containers).
    assert not _process_alive(described["pid"])
