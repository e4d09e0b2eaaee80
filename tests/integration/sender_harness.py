"""Running `segments sender` as a real process against the session's broker and an
aiosmtpd sink on a free loopback port, each test in its own namespace (topics, group,
ledger folder, metrics port)."""

from __future__ import annotations

import copy
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterable

import orjson
from kafka import KafkaConsumer, KafkaProducer

from stream.broker.local import free_port
from stream.sender.sink import SinkHandler, SmtpSink
from tests.integration.kafka_helpers import create_topic

SEGMENTS = str(Path(sys.executable).with_name("segments"))
DOMAIN = "shop.example"


class SenderNamespace:
    def __init__(self, bootstrap: str, prefix: str, tmp_path: Path, *, contacts: dict[str, str] | None = None,
                 handler: SinkHandler | None = None, extra: str = "") -> None:
        self.bootstrap = bootstrap
        self.tmp_path = tmp_path
        self.group_id = f"{prefix}-group"
        self.topics = {"actions": f"{prefix}-actions", "dead_letter": f"{prefix}-dlq", "customer_profiles": f"{prefix}-profiles"}
        create_topic(bootstrap, self.topics["actions"], 2)
        create_topic(bootstrap, self.topics["dead_letter"], 1)
        create_topic(bootstrap, self.topics["customer_profiles"], 2, {"cleanup.policy": "compact"})
        self.handler = handler or SinkHandler()
        self.sink = SmtpSink(self.handler, port=free_port()).start()
        self.metrics_port = free_port()
        self.data_dir = tmp_path / "sender-data"
        contacts_file = tmp_path / "contacts.csv"
        contacts_file.write_text("customer_id,email,name\n" + "".join(
            f"{customer},{address},Customer {customer}\n" for customer, address in (contacts or {}).items()))
        topic_lines = "\n".join(f'{key} = "{value}"' for key, value in self.topics.items())
        self.config = tmp_path / "segments.toml"
        self.config.write_text(
            f'[sender]\ngroup_id = "{self.group_id}"\ndata_dir = "{self.data_dir}"\ncontacts_file = "{contacts_file}"\n'
            f"metrics_port = {self.metrics_port}\nretry_initial_seconds = 0.2\nretry_max_seconds = 1.0\npoll_seconds = 0.2\n{extra}\n"
            f'[sender.topics]\n{topic_lines}\n\n[sender.smtp]\nhost = "127.0.0.1"\nport = {self.sink.port}\n'
            f'from_address = "news@{DOMAIN}"\nfrom_name = "Shop"\ntimeout_seconds = 5\n'
        )
        self.process: subprocess.Popen | None = None
        self.log = tmp_path / "sender.log"
        self.owns_sink = True

    def another_instance(self, name: str) -> "SenderNamespace":
        """A second sender of the same group, topics and SMTP server, with its own ledger
        folder, log and metrics port."""
        other = copy.copy(self)
        other.data_dir = self.tmp_path / f"sender-data-{name}"
        other.metrics_port = free_port()
        other.log = self.tmp_path / f"sender-{name}.log"
        other.config = self.tmp_path / f"segments-{name}.toml"
        other.config.write_text(self.config.read_text()
                                .replace(f'data_dir = "{self.data_dir}"', f'data_dir = "{other.data_dir}"')
                                .replace(f"metrics_port = {self.metrics_port}\n", f"metrics_port = {other.metrics_port}\n"))
        other.process = None
        other.owns_sink = False
        return other

    # -- the sender process -----------------------------------------------------------

    def start(self, ready_timeout: float = 60, command: list[str] | None = None, wait_ready: bool = True,
              env: dict[str, str] | None = None) -> None:
        """``command``: what runs the sender instead of the `segments` command (taking the
        same arguments), with ``env`` added to its environment."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*(command or [SEGMENTS]), "--config", str(self.config), "sender", "-l", "info"],
                env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
            )
        if wait_ready:
            self.wait_for(lambda: self.health().get("ready") is True, ready_timeout, "the sender to be ready")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.process = None
        return code

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        if self.owns_sink:
            self.sink.stop()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError:
            return 0, b""

    def health(self) -> dict[str, Any]:
        status, body = self._get("/healthz")
        return orjson.loads(body) if status in (200, 503) and body else {}

    def metrics(self) -> str:
        return self._get("/metrics")[1].decode()

    def metric(self, sample: str) -> float | None:
        for line in self.metrics().splitlines():
            if line.startswith(sample + " "):
                return float(line.split()[-1])
        return None

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the sender exited ({self.process.returncode}) while waiting for {what}:\n{self.log_tail()}")
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}:\n{self.log_tail()}")

    # -- Kafka --------------------------------------------------------------------------

    def produce(self, topic: str, records: Iterable[dict[str, Any] | bytes], *, key: str = "customer_id") -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        try:
            for record in records:
                if isinstance(record, bytes):
                    producer.send(self.topics[topic], key=b"garbage", value=record)
                else:
                    producer.send(self.topics[topic], key=str(record[key]).encode(), value=orjson.dumps(record))
            producer.flush(timeout=30)
        finally:
            producer.close()

    def read(self, topic: str, idle: float = 2.0) -> list[Any]:
        consumer = KafkaConsumer(self.topics[topic], bootstrap_servers=self.bootstrap, auto_offset_reset="earliest",
                                 enable_auto_commit=False, consumer_timeout_ms=int(idle * 1000))
        try:
            return [record for record in consumer]
        finally:
            consumer.close()

    # -- the ledger and the sink --------------------------------------------------------

    def ledger(self) -> dict[str, dict[str, Any]]:
        """action_id -> row, read from the sender's SQLite ledger (read-only, safe while it runs)."""
        path = self.data_dir / "ledger.sqlite3"
        if not path.exists():
            return {}
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            db.row_factory = sqlite3.Row
            return {row["action_id"]: dict(row) for row in db.execute("SELECT * FROM actions")}
        except sqlite3.OperationalError:  # the sender has not created its tables yet
            return {}
        finally:
            db.close()

    def cli(self, *args: str) -> str:
        """``segments --config <this namespace's> ARGS``; its stdout."""
        completed = subprocess.run([SEGMENTS, "--config", str(self.config), *args], capture_output=True, text=True, timeout=60)
        assert completed.returncode == 0, completed.stderr[-3000:]
        return completed.stdout

    def states(self) -> dict[str, str]:
        return {action_id: row["state"] for action_id, row in self.ledger().items()}

    def received_ids(self) -> list[str]:
        """Action ids of every message the sink received (Message-ID <action_id@domain>), in order, with repeats."""
        ids = []
        for mail in self.handler.received():
            message_id = mail.message_id or ""
            ids.append(message_id.strip("<>").split("@", 1)[0])
        return ids
