"""faust-streaming as a real process on the project's broker: tables on RocksDB, exactly-once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaProducer

from tests.integration.kafka_helpers import consume_all, create_topic

pytestmark = pytest.mark.integration
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_faust_exactly_once_worker_with_rocksdb_table(kafka_bootstrap: str, unique_name, tmp_path: Path) -> None:
    source, sink = unique_name("in"), unique_name("out")
    create_topic(kafka_bootstrap, source, partitions=2)
    create_topic(kafka_bootstrap, sink, partitions=2)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for i in range(20):
        producer.send(source, key=f"k{i % 4}".encode(), value=f"v{i}".encode())
    producer.flush()
    producer.close()

    env = {
        **os.environ,
        "SMOKE_APP_ID": unique_name("app"),
        "SMOKE_IN": source,
        "SMOKE_OUT": sink,
        "SMOKE_DATA_DIR": str(tmp_path / "faust-data"),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "faust", "-A", "tests.integration.apps.faust_counter", "worker", "-l", "warn"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        records = consume_all(kafka_bootstrap, sink, expected=20, timeout=90, isolation_level="read_committed")
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=60)
    assert len(records) == 20, output.decode(errors="replace")[-3000:]
    by_key: dict[bytes, list[int]] = {}
    for record in records:
        by_key.setdefault(record.key, []).append(int(record.value.rsplit(b":", 1)[1]))
    # Each key's counter ran 1..5 in order: the table kept state per key.
    assert {key: sorted(values) for key, values in by_key.items()} == {f"k{i}".encode(): [1, 2, 3, 4, 5] for i in range(4)}
    # The table lives in RocksDB through rocksdict.
    assert list((tmp_path / "faust-data").rglob("*.db")) or list((tmp_path / "faust-data").rglob("CURRENT"))
