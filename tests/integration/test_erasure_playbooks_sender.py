"""A customer's erasure through the real `segments playbooks run` and `segments sender`
processes, a real broker and an SMTP server on loopback. The segment-change records are
written by hand, as the worker's erasure contract says it emits them
(schemas/segment_change.schema.json): the erased customer's delayed cart reminder is
never sent while a control customer's is, their ledger rows are redacted and their
cached profile deleted, and a playbooks app recovered from its changelog alone (a fresh
data folder) has forgotten the customer's cooldown but not the control's."""

from __future__ import annotations

import hashlib
import itertools
import signal
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from stream.core.timeutil import rfc3339_ms
from tests.integration.sender_harness import SenderNamespace
from tests.integration.test_playbooks_app import PlaybooksProcess
from tests.integration.test_worker_config import topic_configs
from tests.integration.worker_harness import WorkerNamespace
from tests.unit.sender.helpers import profile_record

pytestmark = pytest.mark.integration

ERASED, CONTROL = "erase-me-4d1c", "keep-me-8b2e"  # searched for in logs and files: unlike anything else there
SECOND_REMINDER_DELAY_SECONDS = 45  # 0.0125 h, whole milliseconds; room for the erasure to reach the sender before it is due (8 s here)
RULES_VERSION = "r1-000000000001"
NULL_SCORES = {"r": None, "f": None, "m": None, "fm": None}
NULL_METRICS = dict.fromkeys(("recency_days", "frequency", "monetary", "orders_lifetime", "first_order_at", "last_order_at"))
_change_ids = itertools.count()

PLAYBOOK = f"""
name: erasure_test
holdout: {{share: 0}}
policies:
  timezone: UTC
  quiet_hours: null
  frequency_caps: {{}}
  backfill: {{horizon_hours: 48, act: false}}
actions:
  - name: cart_reminder
    trigger: {{enter_tag: cart_abandoner}}
    channel: email
    template: cart_reminder
    expires_after_hours: 24
  - name: cart_reminder_free_shipping
    trigger: {{enter_tag: cart_abandoner}}
    channel: email
    template: cart_reminder_free_shipping
    delay_hours: {SECOND_REMINDER_DELAY_SECONDS / 3600}
    cooldown_days: 7
    expires_after_hours: 48
"""


def change(customer: str, at_ms: int, cause: dict[str, Any], **detail: Any) -> dict[str, Any]:
    """A segment-change record as the worker writes it."""
    return {
        "change_id": hashlib.sha256(f"erasure-test-{time.time_ns()}-{next(_change_ids)}".encode()).hexdigest()[:32],
        "customer_id": customer, **detail, "at": rfc3339_ms(at_ms), "cause": cause, "segment": None, "tags": [],
        "scores": dict(NULL_SCORES), "metrics": dict(NULL_METRICS), "rules_version": RULES_VERSION, "emitted_at": rfc3339_ms(at_ms),
    }


def cart_abandoned(customer: str, at_ms: int) -> dict[str, Any]:
    cause = {"kind": "event", "event_id": f"cart-{customer}-{at_ms}", "event_type": "cart"}
    return {**change(customer, at_ms, cause, kind="tag", tag="cart_abandoner", entered=True), "tags": ["cart_abandoner"]}


def erasure(customer: str, at_ms: int) -> list[dict[str, Any]]:
    """The worker's records for an erased customer holding the tag cart_abandoner, in order."""
    cause = {"kind": "erasure", "event_id": f"erase-{customer}"}
    return [change(customer, at_ms, cause, kind="tag", tag="cart_abandoner", entered=False), change(customer, at_ms, cause, kind="erasure")]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def profile_customers(sender: SenderNamespace) -> set[str]:
    """Customers whose profile the sender keeps (its SQLite ledger, read-only)."""
    db = sqlite3.connect(f"file:{sender.data_dir / 'ledger.sqlite3'}?mode=ro", uri=True, timeout=10)
    try:
        return {row[0] for row in db.execute("SELECT customer_id FROM profiles")}
    finally:
        db.close()


def received(sender: SenderNamespace) -> dict[str, list[str]]:
    """action id -> the recipients of every message with that Message-ID."""
    out: dict[str, list[str]] = {}
    for mail in sender.handler.received():
        out.setdefault((mail.message_id or "").strip("<>").split("@", 1)[0], []).extend(mail.rcpt_tos)
    return out


def produce(ns: WorkerNamespace, topic: str, records: list[tuple[str, dict[str, Any] | None]]) -> None:
    producer = KafkaProducer(bootstrap_servers=ns.bootstrap, acks="all")
    try:
        for key, value in records:
            producer.send(topic, key=key.encode(), value=None if value is None else orjson.dumps(value))
        producer.flush(timeout=30)
    finally:
        producer.close()


class Playbooks(PlaybooksProcess):
    def assert_running(self) -> None:
        assert self.process is not None and self.process.poll() is None, self.log.read_text(errors="replace")[-3000:]

    def by_customer(self, expected: int) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for record in self.actions(expected, timeout=60):
            out.setdefault(record["customer_id"], []).append(record)
        return out


@pytest.mark.timeout(600)
def test_an_erased_customers_delayed_reminder_is_never_sent_and_the_customer_is_forgotten(
    kafka_bootstrap: str, unique_name, tmp_path: Path,
) -> None:
    ns = WorkerNamespace(kafka_bootstrap, unique_name("erase"), tmp_path, partitions=2)
    # The same prefix: the sender reads the playbooks app's actions topic and the worker's profiles topic.
    sender = SenderNamespace(kafka_bootstrap, ns.prefix, tmp_path, extra='recipient_pattern = "{customer_id}@customers.example"')
    playbook_file = tmp_path / "playbook.yaml"
    playbook_file.write_text(PLAYBOOK)
    playbooks = Playbooks(ns, tmp_path)
    assert sender.topics["actions"] == playbooks.actions_topic and sender.topics["customer_profiles"] == ns.topics["customer_profiles"]
    changes_topic = ns.topics["segment_changes"]

    def wait_for(condition: Any, timeout: float, what: str) -> None:
        playbooks.assert_running()
        sender.wait_for(condition, timeout, what)

    try:
        playbooks.start("--playbook", str(playbook_file))
        sender.start()

        started = now_ms()
        long_ago = datetime.now(UTC) - timedelta(hours=1)  # older than the trigger: the re-checks do not apply
        produce(ns, ns.topics["customer_profiles"], [(ERASED, profile_record(customer_id=ERASED, as_of=long_ago))])
        produce(ns, changes_topic, [(c, cart_abandoned(c, started)) for c in (ERASED, CONTROL)])
        first = playbooks.by_customer(4)
        ids = {c: {r["action"]: r["action_id"] for r in first[c]} for c in (ERASED, CONTROL)}
        wait_for(lambda: {ids[c]["cart_reminder"] for c in ids} <= set(received(sender)), 60, "the first reminders")
        assert ERASED in profile_customers(sender)

        produce(ns, changes_topic, [(ERASED, record) for record in erasure(ERASED, now_ms())])
        produce(ns, ns.topics["customer_profiles"], [(ERASED, None)])  # the worker's tombstone
        later = ids[ERASED]["cart_reminder_free_shipping"]
        wait_for(lambda: sender.states().get(later) == "skipped", 60, "the erased customer's reminder cancelled")
        assert now_ms() < started + SECOND_REMINDER_DELAY_SECONDS * 1000, "the erasure must arrive before the reminder is due"

        # The ledger keeps the erased customer's action ids and states, nothing else.
        ledger = sender.ledger()
        for action_id, state, reason in ((later, "skipped", "erased"), (ids[ERASED]["cart_reminder"], "sent", "")):
            row = ledger[action_id]
            assert (row["state"], row["reason"], row["customer_id"], row["smtp_reply"]) == (state, reason, "", None)
            assert set(orjson.loads(row["record"])) == {"action_id", "expires_at"}
        assert {ledger[i]["customer_id"] for i in ids[CONTROL].values()} == {CONTROL}
        wait_for(lambda: ERASED not in profile_customers(sender), 60, "the erased customer's profile deleted")
        shown = [orjson.loads(line) for line in sender.cli("ledger", "show", "--state", "all", "--json").splitlines()]
        assert {(item["action_id"], item["customer_id"], item["erased"]) for item in shown if item["action_id"] in ids[ERASED].values()} == {
            (ids[ERASED]["cart_reminder"], None, True), (later, None, True)}
        assert sender.metric("segments_sender_erasures_total") == 1
        assert sender.metric('segments_actions_skipped_total{reason="erased"}') == 1
        files = [sender.data_dir / name for name in ("ledger.sqlite3", "ledger.sqlite3-wal")]
        assert not any(ERASED.encode() in path.read_bytes() for path in files if path.exists())

        # On playbook-actions: the erasure caused no action record, and its notice follows
        # the customer's actions.
        actions = playbooks.by_customer(5)
        assert [r.get("kind", "action") for r in actions[ERASED]] == ["action", "action", "erasure"]
        assert actions[ERASED][-1]["status"] == "erased" and len(actions[CONTROL]) == 2

        # A playbooks app recovering its policy table from the changelog alone: the erased
        # customer's cooldown is gone (a tombstone reached the changelog), the control's not.
        playbooks.kill(signal.SIGTERM)
        playbooks.start("--playbook", str(playbook_file), "--data-dir", str(tmp_path / "playbooks-recovered"))
        again = now_ms()
        produce(ns, changes_topic, [(c, cart_abandoned(c, again)) for c in (ERASED, CONTROL)])
        actions = playbooks.by_customer(9)
        outcomes = {c: {r["action"]: r["skip_reason"] for r in actions[c][-2:]} for c in (ERASED, CONTROL)}
        assert outcomes == {
            ERASED: {"cart_reminder": None, "cart_reminder_free_shipping": None},
            CONTROL: {"cart_reminder": None, "cart_reminder_free_shipping": "cooldown"},
        }
        # The customer's new history is sent as anyone's.
        new_first = next(r["action_id"] for r in actions[ERASED][-2:] if r["action"] == "cart_reminder")
        wait_for(lambda: new_first in received(sender), 60, "the returning customer's reminder")

        # The control's second reminder went out when due (the checks above ran meanwhile);
        # the erased customer's never does.
        control_later = ids[CONTROL]["cart_reminder_free_shipping"]
        wait_for(lambda: control_later in received(sender), SECOND_REMINDER_DELAY_SECONDS + 60, "the control's second reminder")
        time.sleep(3)
        assert later not in received(sender)
        assert received(sender)[ids[ERASED]["cart_reminder"]] == [f"{ERASED}@customers.example"], "sent once, before the erasure"

        # Neither process names the erased customer in its log.
        assert ERASED not in playbooks.log.read_text(errors="replace")
        assert ERASED not in sender.log.read_text(errors="replace")
        # The erased policy state's older values leave the changelog within a week.
        policies = f"{ns.prefix}-playbooks-policies-changelog"
        policy_configs = topic_configs(ns.bootstrap, policies)[policies]
        assert policy_configs["max.compaction.lag.ms"] == str(7 * 86_400_000)
        assert policy_configs["segment.ms"] == str(3_600_000)  # a restore reads about an hour uncompacted
    finally:
        sender.close()
        playbooks.close()
        ns.close()
