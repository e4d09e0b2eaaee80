"""The worker's changes to faust's consumer (stream/worker/faust_patches.py) in a real
faust process on the broker: every message reaches a slow agent once, in order, and a
stream buffer that fills holds delivery back instead of taking its partition out of the
fetcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaProducer

from tests.integration.kafka_helpers import create_topic

pytestmark = pytest.mark.integration
PROJECT_ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 3000


def test_full_stream_buffers_hold_delivery_back_and_lose_nothing(kafka_bootstrap: str, unique_name, tmp_path: Path) -> None:
    source = unique_name("in")
    create_topic(kafka_bootstrap, source, partitions=2)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=5)
    for number in range(MESSAGES):
        producer.send(source, value=str(number).encode(), partition=number % 2)
    producer.flush()
    producer.close()

    result = tmp_path / "result.json"
    env = {
        **os.environ,
        "DELIVERY_APP_ID": unique_name("app"), "DELIVERY_IN": source, "DELIVERY_EXPECTED": str(MESSAGES),
        "DELIVERY_RESULT": str(result), "DELIVERY_DATA_DIR": str(tmp_path / "faust-data"),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PYTHONPATH": str(PROJECT_ROOT),
    }
    app = subprocess.Popen(
        [sys.executable, "-m", "faust", "-A", "tests.integration.apps.faust_delivery", "worker", "-l", "warn"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        output, _ = app.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        app.kill()
        output, _ = app.communicate()
    assert result.exists(), output.decode(errors="replace")[-3000:]
    outcome = json.loads(result.read_text())
    by_partition: dict[int, list[int]] = {0: [], 1: []}
    for partition, offset, value in outcome["seen"]:
        by_partition[partition].append(offset)
        assert int(value) % 2 == partition
    # Each message once, in offset order, none lost.
    assert by_partition == {partition: list(range(MESSAGES // 2)) for partition in (0, 1)}
    # The buffer (64 messages) filled many times over, and never took a partition out
    # of the fetcher: faust as shipped does (DELIVERY_PATCHED=0).
    assert outcome["paused"] == []
