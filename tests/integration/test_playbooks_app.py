"""`segments playbooks run` between the real worker and the actions topic: the action
records are exactly what the pure core decides over the batch command's change list;
old history triggers nothing unless asked; a SIGKILLed playbooks app loses no action."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

from stream.broker.local import free_port
from stream.clients import KafkaSettings
from stream.clients.topics import TopicSpec, ensure_topics
from stream.core.timeutil import rfc3339_ms
from stream.demo.live import live_events
from stream.playbooks import decide, load_playbook
from tests.integration.worker_harness import SEGMENTS, WorkerNamespace, batch_results

pytestmark = pytest.mark.integration

class PlaybooksProcess:
    def __init__(self, ns: WorkerNamespace, tmp_path: Path, *, guarantee: str = "at_least_once", suppressed: list[str] = (),
                 group_instance_id: str | None = None) -> None:
        self.ns = ns
        self.web_port = free_port()
        self.log = tmp_path / "playbooks.log"
        suppression = tmp_path / "suppressed.txt"
        suppression.write_text("# do not contact\n" + "".join(f"{c}\n" for c in suppressed))
        self.actions_topic = f"{ns.prefix}-actions"
        self.suppression_topic = f"{ns.prefix}-suppressed"
        with ns.config.open("a") as config:
            config.write(
                f'\n[playbooks]\napp_id = "{ns.prefix}-playbooks"\ndata_dir = "{tmp_path / "playbooks-data"}"\n'
                f'web_port = {self.web_port}\nprocessing_guarantee = "{guarantee}"\nsuppression_file = "{suppression}"\n'
                "session_timeout_seconds = 10\n"
                + (f'group_instance_id = "{group_instance_id}"\n' if group_instance_id else "")
                + f'\n[playbooks.topics]\nactions = "{self.actions_topic}"\nsuppression = "{self.suppression_topic}"\n'
            )
        self.process: subprocess.Popen | None = None
        self._readies = 0

    def start(self, *extra: str) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [SEGMENTS, "--config", str(self.ns.config), "playbooks", "run", "-l", "info", *extra],
                env=self.ns.env(), stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            if self.log.read_text(errors="replace").count("[^Worker]: Ready") > self._readies:
                self._readies += 1
                return
            time.sleep(0.3)
        raise AssertionError(f"playbooks app not ready:\n{self.log.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=60)
        self.process = None

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def actions(self, expected: int, *, isolation_level: str = "read_uncommitted", timeout: float = 120) -> list[dict]:
        """Every record on the actions topic, waiting until at least ``expected`` arrived."""
        consumer = KafkaConsumer(
            self.actions_topic, bootstrap_servers=self.ns.bootstrap, auto_offset_reset="earliest",
            enable_auto_commit=False, isolation_level=isolation_level, consumer_timeout_ms=3000,
        )
        records: list[dict] = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                records.extend(orjson.loads(record.value) for record in consumer)
                if len(records) >= expected:
                    # a little longer: nothing beyond the expected may follow
                    records.extend(orjson.loads(record.value) for record in consumer)
                    return records
            return records
        finally:
            consumer.close()


def expected_actions(changes_by_customer: dict[str, list[dict]], now_ms: int, suppressed: set[str], act_on_backfill: bool = False) -> list[dict]:
    playbook = load_playbook(None)
    if act_on_backfill:
        playbook = playbook.with_backfill_act(True)
    out = []
    for customer, changes in changes_by_customer.items():
        state = None
        for change in changes:
            records, state = decide(change, playbook, state, now_ms=now_ms, suppressed=customer in suppressed)
            out.extend(records)
    return out


def comparable(records: list[dict]) -> dict[str, tuple]:
    """Action records, and erasure notices (no action, skip reason, holdout, timing)."""
    fields = ("action", "status", "skip_reason", "holdout", "not_before", "timezone")
    return {r["action_id"]: tuple(r.get(field) for field in fields) for r in records}


@pytest.fixture
def namespace(kafka_bootstrap: str, unique_name, tmp_path: Path):
    ns = WorkerNamespace(kafka_bootstrap, unique_name("pb"), tmp_path)
    yield ns
    ns.close()


# Buyers erased an hour before now: both left a cart open (reminders, one delayed).
ERASED = (15, 20)


def _replay_recent(ns: WorkerNamespace, tmp_path: Path) -> tuple[Path, str, int]:
    now = time.time_ns() // 1_000_000
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in live_events(now, erased=ERASED)))
    until = rfc3339_ms(now)
    ns.cli("replay", str(history), "--until", until, "--wait", "--timeout", "240")
    return history, until, now


@pytest.mark.timeout(600)
def test_actions_are_what_the_core_decides_over_the_change_list(namespace: WorkerNamespace, tmp_path: Path) -> None:
    suppressed = ["pb-004", "pb-007"]
    playbooks = PlaybooksProcess(namespace, tmp_path, suppressed=suppressed)
    try:
        # The compacted suppression topic adds pb-010; pb-011 is listed, then lifted.
        ensure_topics(KafkaSettings(bootstrap_servers=namespace.bootstrap), [TopicSpec(playbooks.suppression_topic, 2, 1, {"cleanup.policy": "compact"})])
        producer = KafkaProducer(bootstrap_servers=namespace.bootstrap)
        for key, value in ((b"pb-010", b"unsubscribed"), (b"pb-011", b"unsubscribed"), (b"pb-011", None)):
            producer.send(playbooks.suppression_topic, key=key, value=value)
        producer.flush()
        producer.close()
        namespace.start_worker()
        playbooks.start()
        history, until, now = _replay_recent(namespace, tmp_path)
        _, batch_changes = batch_results(history, until, tmp_path)
        expected = expected_actions(batch_changes, now, {*suppressed, "pb-010"})
        records = playbooks.actions(len(expected))
        assert comparable(records) == comparable(expected)
        assert len(records) == len(expected), "no action record twice"
        notices = [r for r in records if r.get("kind") == "erasure"]
        assert sorted(r["customer_id"] for r in notices) == [f"pb-{n:03d}" for n in ERASED]
        records = [r for r in records if r.get("kind") != "erasure"]
        suppressed_customers = {r["customer_id"] for r in records if r["skip_reason"] == "suppressed"}
        assert suppressed_customers == {"pb-004", "pb-007", "pb-010"}
        reasons = {r["skip_reason"] for r in records}
        assert {None, "suppressed", "frequency_cap"} <= reasons, reasons
        assert any(r["holdout"] for r in records) and any(not r["holdout"] for r in records)
        assert {r["timezone"] for r in records} >= {"Europe/Paris", "America/New_York", "UTC"}
        assert all(r["emitted_at"] for r in records)
        metrics = _get(f"http://127.0.0.1:{playbooks.web_port}/metrics").decode()
        scheduled = sum(1 for r in records if r["status"] == "scheduled" and not r["holdout"])
        emitted = sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("segments_actions_emitted_total{"))
        assert emitted == scheduled
    finally:
        playbooks.close()


def test_old_history_triggers_nothing_unless_asked(namespace: WorkerNamespace, tmp_path: Path) -> None:
    playbooks = PlaybooksProcess(namespace, tmp_path)
    try:
        namespace.start_worker()
        playbooks.start()
        old = [
            {"event_id": f"old{n}", "type": "order", "customer_id": f"old-{n}", "occurred_at": f"1997-0{1 + n % 9}-15T12:00:00Z",
             "order_id": f"oo{n}", "status": "placed", "total": 25, "currency": "USD"}
            for n in range(12)
        ]
        history = tmp_path / "old.jsonl"
        history.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in sorted(old, key=lambda e: e["occurred_at"])))
        namespace.cli("replay", str(history), "--until", "1998-07-01", "--wait", "--timeout", "240")
        records = playbooks.actions(1)
        assert records and {r["skip_reason"] for r in records} == {"backfill"}
        _, batch_changes = batch_results(history, "1998-07-01", tmp_path)
        assert len(records) == len(expected_actions(batch_changes, time.time_ns() // 1_000_000, set()))
    finally:
        playbooks.close()


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("guarantee", "group_instance_id"), [
    ("at_least_once", None),  # the restarted app joins as a new member: a rebalance after the session timeout
    ("exactly_once", "playbooks-1"),  # static membership: it takes the killed one's place at once
])
def test_sigkill_loses_no_action(namespace: WorkerNamespace, tmp_path: Path, guarantee: str, group_instance_id: str | None) -> None:
    playbooks = PlaybooksProcess(namespace, tmp_path, guarantee=guarantee, group_instance_id=group_instance_id)
    try:
        namespace.start_worker()
        history, until, now = _replay_recent(namespace, tmp_path)  # changes waiting before the app starts
        _, batch_changes = batch_results(history, until, tmp_path)
        expected = expected_actions(batch_changes, now, set())
        playbooks.start()
        deadline = time.monotonic() + 120
        while len(playbooks.actions(1, timeout=5)) < 5:
            assert time.monotonic() < deadline, playbooks.log.read_text()[-3000:]
        playbooks.kill()
        playbooks.start()
        isolation = "read_committed" if guarantee == "exactly_once" else "read_uncommitted"
        records = playbooks.actions(len(expected), isolation_level=isolation)
        by_id: dict[str, list[tuple]] = defaultdict(list)
        for record in records:
            by_id[record["action_id"]].append(comparable([record])[record["action_id"]])
        # Every action arrives; a repeat (at-least-once) is the same decision, never a flip.
        assert {i: v[0] for i, v in by_id.items()} == comparable(expected)
        assert all(len(set(v)) == 1 for v in by_id.values())
        if guarantee == "exactly_once":
            assert len(records) == len(expected), "read_committed sees each action once"
    finally:
        playbooks.close()


def _get(url: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()
