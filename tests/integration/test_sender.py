"""`segments sender` as a real process: a real broker, a real SMTP server (aiosmtpd) on
loopback, SIGKILL for crashes. Action records are produced directly with kafka-python."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from stream.sender.sink import SinkHandler
from tests.integration.sender_harness import SenderNamespace
from tests.unit.sender.helpers import action_record, parse_iso, profile_record

pytestmark = pytest.mark.integration

TERMINAL = {"sent", "unknown", "skipped", "expired", "failed"}


@pytest.fixture
def make_namespace(kafka_bootstrap: str, unique_name, tmp_path: Path):
    created: list[SenderNamespace] = []

    def make(**kwargs) -> SenderNamespace:
        ns = SenderNamespace(kafka_bootstrap, unique_name("sender"), tmp_path, **kwargs)
        created.append(ns)
        return ns

    yield make
    for ns in created:
        ns.close()


def _contacts(*customers: str) -> dict[str, str]:
    return {customer: f"{customer}@customers.example" for customer in customers}


@pytest.mark.timeout(180)
def test_exactly_the_expected_emails_for_a_scripted_list_of_actions(make_namespace) -> None:
    ns = make_namespace(contacts=_contacts("ann", "bo", "cy", "dee", "ed", "flo", "gus", "hal"))
    now = datetime.now(UTC)
    send_1 = action_record(customer_id="ann")
    send_2 = action_record(customer_id="bo", template="cart_reminder", kind="tag", tag="cart_abandoner", offer=None)
    quiet = action_record(customer_id="cy", not_before=now + timedelta(seconds=4))  # quiet hours end in 4 s
    holdout = action_record(customer_id="dee", holdout=True)
    skipped = action_record(customer_id="ed", status="skipped")
    sms = action_record(customer_id="flo", channel="sms", template="at_risk_incentive_sms")
    audience = action_record(customer_id="flo", channel="ads_audience", template=None, params={"audience": "retargeting", "op": "add"})
    expired = action_record(customer_id="gus", not_before=now - timedelta(hours=2), expires_at=now - timedelta(minutes=1))
    no_contact = action_record(customer_id="zed")
    no_template = action_record(customer_id="hal", template="no_such_template")
    ns.produce("actions", [send_1, send_2, quiet, holdout, skipped, sms, audience, expired, no_contact, no_template,
                           send_1, b"\x00 not json"])  # send_1 twice: a redelivery
    ns.start()

    expected_states = {
        send_1["action_id"]: "sent", send_2["action_id"]: "sent", quiet["action_id"]: "sent",
        expired["action_id"]: "expired", no_contact["action_id"]: "skipped", no_template["action_id"]: "failed",
    }
    ns.wait_for(lambda: ns.states() == expected_states, 60, f"the ledger to reach {expected_states}")
    ledger = ns.ledger()
    assert ledger[no_contact["action_id"]]["reason"] == "no_contact"
    assert ledger[expired["action_id"]]["reason"] == "expired"
    assert ledger[no_template["action_id"]]["reason"] == "template_missing"

    # Exactly the three emails, once each (the ledger is settled: nothing else can follow).
    received = ns.received_ids()
    assert Counter(received) == Counter({send_1["action_id"]: 1, send_2["action_id"]: 1, quiet["action_id"]: 1})
    mails = {mail.message_id: mail for mail in ns.handler.received()}
    quiet_mail = mails[f"<{quiet['action_id']}@shop.example>"]
    assert quiet_mail.received_at >= parse_iso(quiet["not_before"]).timestamp()  # held until its quiet hours ended
    assert quiet_mail.rcpt_tos == ("cy@customers.example",)
    message = mails[f"<{send_2['action_id']}@shop.example>"].message()
    assert message["Subject"] == "You left something in your cart" and message["To"] == "Customer bo <bo@customers.example>"

    letters = [orjson.loads(record.value) for record in ns.read("dead_letter")]
    assert sorted(letter["reason"] for letter in letters) == ["malformed", "template_missing"]
    missing = next(letter for letter in letters if letter["reason"] == "template_missing")
    assert missing["action"] == no_template and missing["smtp"] is None
    malformed = next(letter for letter in letters if letter["reason"] == "malformed")
    assert malformed["source"]["topic"] == ns.topics["actions"] and malformed["raw_base64"]

    assert ns.metric('segments_actions_sent_total{channel="email"}') == 3
    assert ns.metric('segments_actions_skipped_total{reason="no_contact"}') == 1
    assert ns.metric('segments_actions_skipped_total{reason="expired"}') == 1
    assert ns.metric('segments_actions_failed_total{kind="permanent"}') == 1
    assert ns.metric('segments_sender_ignored_total{reason="holdout"}') == 1
    assert ns.metric('segments_sender_ignored_total{reason="channel"}') == 2
    assert ns.metric('segments_sender_ignored_total{reason="status"}') == 1
    assert ns.metric('segments_sender_ignored_total{reason="malformed"}') == 1
    assert ns.metric("segments_sender_pending") == 0
    assert ns.stop() == 0
    # No address in the sender's log (customers' addresses are personal data).
    assert "@customers.example" not in ns.log.read_text()


@pytest.mark.timeout(240)
def test_sigkill_mid_batch_and_restart_sends_no_action_twice(make_namespace) -> None:
    customers = [f"c{n:02d}" for n in range(40)]
    handler = SinkHandler(delay_seconds=0.25)  # a slow server: the kill lands mid-transaction
    # A static group member: the restarted sender takes the killed one's place at once
    # instead of waiting out its session (the ledger's recovery is what this test is about).
    ns = make_namespace(contacts=_contacts(*customers), handler=handler, extra='group_instance_id = "sender-1"')
    actions = [action_record(customer_id=customer) for customer in customers]
    ids = {action["action_id"] for action in actions}
    ns.produce("actions", actions)
    ns.start()
    ns.wait_for(lambda: len(handler.received()) >= 8, 60, "8 emails before the kill")
    ns.kill()
    at_kill = len(handler.received())
    assert at_kill < len(actions), "the kill should land mid-batch"
    handler.delay_seconds = 0.0

    ns.start()
    ns.wait_for(lambda: set(ns.states()) == ids and set(ns.states().values()) <= TERMINAL, 90, "every action settled")
    assert ns.stop() == 0
    states = ns.states()
    sent = {action_id for action_id, state in states.items() if state == "sent"}
    unknown = {action_id for action_id, state in states.items() if state == "unknown"}
    received = ns.received_ids()

    assert len(received) == len(set(received)), f"delivered twice: {[i for i, n in Counter(received).items() if n > 1]}"
    assert sent | unknown == ids  # none lost, none failed or skipped
    assert len(unknown) <= 1  # at most the one in flight at the kill
    assert sent <= set(received)  # every "sent" arrived
    assert set(received) - sent <= unknown  # anything else that arrived is the in-flight one
    for action_id in unknown:
        assert ns.ledger()[action_id]["reason"] == "in_flight_at_restart"
    assert "recorded as unknown, not sent again" in ns.log.read_text() or not unknown

    # The operator's side: `segments ledger` lists the unknown action; the mail server's
    # record (here the sink's) settles it, and a resend reaches the customer exactly once.
    listed = [orjson.loads(line)["action_id"] for line in ns.cli("ledger", "show", "--json").splitlines()]
    assert set(listed) == unknown
    for action_id in unknown:
        resolution = "sent" if action_id in received else "resend"
        assert ns.cli("ledger", "resolve", action_id, resolution, "--note", "the sink's record").strip().endswith(
            "-> sent" if resolution == "sent" else "-> pending")
    if set(ns.received_ids()) != ids:
        ns.start()
        ns.wait_for(lambda: set(ns.received_ids()) == ids, 60, "the resent email")
        assert ns.stop() == 0
    assert Counter(ns.received_ids()) == Counter({action_id: 1 for action_id in ids})
    assert set(ns.states().values()) == {"sent"}


class HoldingHandler(SinkHandler):
    """Holds the ``hold``-th message (1-based) at the end of its data until ``let_go`` is
    set, then drops it unrecorded: the mail a crashed sender never heard back about, and
    which the server never took."""

    def __init__(self, hold: int) -> None:
        super().__init__()
        self.hold = hold
        self.holding = threading.Event()
        self.let_go = threading.Event()
        self._seen = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        self._seen += 1
        if self._seen != self.hold:
            return await super().handle_DATA(server, session, envelope)
        self.holding.set()
        while not self.let_go.is_set():
            await asyncio.sleep(0.05)
        return "451 Not taken: the client went away"


@pytest.mark.timeout(240)
def test_an_email_in_flight_at_a_crash_and_never_delivered_is_sent_once_when_the_operator_resends_it(make_namespace) -> None:
    customers = ["c01", "c02", "c03"]
    handler = HoldingHandler(hold=2)
    ns = make_namespace(contacts=_contacts(*customers), handler=handler, extra='group_instance_id = "sender-1"')
    actions = [action_record(customer_id=customer) for customer in customers]
    ids = {action["action_id"] for action in actions}
    ns.produce("actions", actions)
    ns.start()
    ns.wait_for(handler.holding.is_set, 60, "the second email in flight")
    ns.kill()  # the ledger says "sending": nobody knows whether it arrived
    handler.let_go.set()  # it did not

    ns.start()
    ns.wait_for(lambda: set(ns.states()) == ids and set(ns.states().values()) <= TERMINAL, 90, "every action settled")
    assert ns.stop() == 0
    states = ns.states()
    (in_flight,) = [action_id for action_id, state in states.items() if state == "unknown"]
    assert in_flight not in ns.received_ids() and len(ns.received_ids()) == 2  # never sent again on its own

    assert [orjson.loads(line)["action_id"] for line in ns.cli("ledger", "show", "--json").splitlines()] == [in_flight]
    assert ns.cli("ledger", "resolve", in_flight, "resend", "--note", "not in the relay's log").strip().endswith("-> pending")
    ns.start()
    ns.wait_for(lambda: in_flight in ns.received_ids(), 60, "the resent email")
    assert ns.stop() == 0
    assert Counter(ns.received_ids()) == Counter({action_id: 1 for action_id in ids})
    assert set(ns.states().values()) == {"sent"}


@pytest.mark.timeout(180)
def test_a_transient_smtp_outage_is_ridden_out(make_namespace) -> None:
    customers = [f"o{n}" for n in range(10)]
    ns = make_namespace(contacts=_contacts(*customers))
    first = [action_record(customer_id=customer) for customer in customers[:5]]
    second = [action_record(customer_id=customer) for customer in customers[5:]]
    ns.start()
    ns.produce("actions", first)
    ns.wait_for(lambda: len(ns.received_ids()) == 5, 60, "the first five emails")

    ns.sink.stop()  # the outage: connection refused
    ns.produce("actions", second)
    ns.wait_for(lambda: (ns.metric('segments_actions_failed_total{kind="transient"}') or 0) >= 3, 60, "failed attempts during the outage")
    assert len(ns.received_ids()) == 5
    assert {ns.states()[a["action_id"]] for a in second} == {"pending"}
    # Which of them were tried during the outage depends on the order they were read in.
    failed = {action_id for action_id, row in ns.ledger().items() if row["state"] == "pending" and row["attempts"] >= 1}
    assert failed
    ns.sink.start()  # same port

    all_ids = {a["action_id"] for a in first + second}
    ns.wait_for(lambda: set(ns.states().values()) == {"sent"} and set(ns.states()) == all_ids, 60, "every email after the outage")
    assert Counter(ns.received_ids()) == Counter({action_id: 1 for action_id in all_ids})
    assert all(ns.ledger()[action_id]["attempts"] >= 2 for action_id in failed)  # retried, then sent
    assert ns.stop() == 0


@pytest.mark.timeout(180)
def test_a_permanent_refusal_goes_to_the_dead_letter_topic_with_the_reply(make_namespace) -> None:
    handler = SinkHandler(reject=lambda address: (550, "5.1.1 Mailbox unavailable") if address.startswith("bounce") else None)
    ns = make_namespace(contacts=_contacts("bounce", "fine"), handler=handler)
    refused = action_record(customer_id="bounce")
    accepted = action_record(customer_id="fine")
    ns.produce("actions", [refused, accepted])
    ns.start()
    ns.wait_for(lambda: ns.states() == {refused["action_id"]: "failed", accepted["action_id"]: "sent"}, 60, "one failed, one sent")
    letters = [orjson.loads(record.value) for record in ns.read("dead_letter")]
    assert len(letters) == 1
    letter = letters[0]
    assert letter["reason"] == "smtp_permanent" and letter["action_id"] == refused["action_id"]
    assert letter["smtp"] == {"code": 550, "reply": "5.1.1 Mailbox unavailable", "stage": "rcpt"}
    assert letter["action"] == refused
    row = ns.ledger()[refused["action_id"]]
    assert (row["smtp_code"], row["reason"]) == (550, "smtp_permanent")
    assert ns.received_ids() == [accepted["action_id"]]
    assert ns.stop() == 0


@pytest.mark.timeout(180)
def test_send_time_recheck_skips_customers_who_moved_on(make_namespace) -> None:
    ns = make_namespace(contacts=_contacts("won", "moved", "still"))
    now = datetime.now(UTC)
    trigger_at = now - timedelta(hours=2)
    win_back = dict(recheck=["ordered_since_trigger", "left_trigger_segment"], trigger_at=trigger_at, to="At Risk")
    ordered = action_record(customer_id="won", **win_back)
    moved = action_record(customer_id="moved", **win_back)
    still = action_record(customer_id="still", **win_back)
    ns.produce("customer_profiles", [
        # Newer than the trigger, with an order after it: the win-back is moot.
        profile_record(customer_id="won", as_of=now, segment="Loyal Customers", last_order_at=trigger_at + timedelta(hours=1)),
        # Newer than the trigger, in another segment now (no order).
        profile_record(customer_id="moved", as_of=now, segment="Lost", last_order_at=trigger_at - timedelta(days=300)),
        # Older than the trigger: says nothing about what happened since.
        profile_record(customer_id="still", as_of=trigger_at - timedelta(hours=1), segment="Loyal Customers",
                       last_order_at=trigger_at - timedelta(days=100)),
    ])
    ns.produce("actions", [ordered, moved, still])
    ns.start()
    expected = {ordered["action_id"]: "skipped", moved["action_id"]: "skipped", still["action_id"]: "sent"}
    ns.wait_for(lambda: ns.states() == expected, 60, f"the ledger to reach {expected}")
    ledger = ns.ledger()
    assert ledger[ordered["action_id"]]["reason"] == "ordered_since_trigger"
    assert ledger[moved["action_id"]]["reason"] == "left_trigger_segment"
    assert ns.received_ids() == [still["action_id"]]
    assert ns.metric('segments_actions_skipped_total{reason="ordered_since_trigger"}') == 1
    assert ns.stop() == 0


@pytest.mark.timeout(240)
def test_partitions_added_to_the_actions_topic_are_read_without_a_restart(make_namespace) -> None:
    """The group's leader sees the topic grow at its next metadata refresh
    (metadata_refresh_seconds) and rejoins: the sender must come out of that rebalance assigned, not stay in
    it (kafka-python 3.0.12 could: stream/clients/group_consumer.py)."""
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewPartitions

    customers = [f"g{n}" for n in range(6)]
    ns = make_namespace(contacts=_contacts(*customers), extra="metadata_refresh_seconds = 2")
    before = [action_record(customer_id=customer) for customer in customers[:2]]
    ns.start()
    ns.produce("actions", before)
    ns.wait_for(lambda: len(ns.received_ids()) == 2, 60, "the first two emails")

    admin = KafkaAdminClient(bootstrap_servers=ns.bootstrap)
    try:
        admin.create_partitions({ns.topics["actions"]: NewPartitions(total_count=4)})
    finally:
        admin.close()
    after = [action_record(customer_id=customer) for customer in customers[2:]]
    producer = KafkaProducer(bootstrap_servers=ns.bootstrap, acks="all")
    try:
        for partition, action in zip((2, 3, 2, 3), after):  # only on the new partitions
            producer.send(ns.topics["actions"], key=action["customer_id"].encode(), value=orjson.dumps(action),
                          partition=partition).get(timeout=30)
    finally:
        producer.close()
    all_ids = {action["action_id"] for action in before + after}
    ns.wait_for(lambda: set(ns.received_ids()) == all_ids, 90, "the emails of the actions on the new partitions")
    assert Counter(ns.received_ids()) == Counter({action_id: 1 for action_id in all_ids})
    assert ns.stop() == 0


@pytest.mark.timeout(180)
def test_partitions_added_to_the_profiles_topic_are_read_without_a_restart(make_namespace) -> None:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewPartitions

    ns = make_namespace(contacts=_contacts("first", "moved"), extra="metadata_refresh_seconds = 1")
    ns.start()
    first = action_record(customer_id="first")
    ns.produce("actions", [first])
    ns.wait_for(lambda: ns.received_ids() == [first["action_id"]], 60, "the first email")

    admin = KafkaAdminClient(bootstrap_servers=ns.bootstrap)
    try:
        admin.create_partitions({ns.topics["customer_profiles"]: NewPartitions(total_count=4)})
    finally:
        admin.close()
    now = datetime.now(UTC)
    trigger_at = now - timedelta(hours=2)
    # Only on a new partition: the customer left the segment the win-back was for.
    moved = profile_record(customer_id="moved", as_of=now, segment="Lost", last_order_at=trigger_at - timedelta(days=300))
    producer = KafkaProducer(bootstrap_servers=ns.bootstrap, acks="all")
    try:
        producer.send(ns.topics["customer_profiles"], key=b"moved", value=orjson.dumps(moved), partition=3).get(timeout=30)
    finally:
        producer.close()
    time.sleep(4)  # the sender's metadata is at most 1 s old, refreshed as it polls (every 0.2 s)
    win_back = action_record(customer_id="moved", recheck=["left_trigger_segment"], trigger_at=trigger_at, to="At Risk")
    ns.produce("actions", [win_back])
    ns.wait_for(lambda: ns.states().get(win_back["action_id"]) in TERMINAL, 60, "the win-back's outcome")
    assert ns.states()[win_back["action_id"]] == "skipped", ns.log.read_text()[-3000:]
    assert ns.ledger()[win_back["action_id"]]["reason"] == "left_trigger_segment"
    assert ns.received_ids() == [first["action_id"]]
    assert "reading the partitions [2, 3] added to" in ns.log.read_text()
    assert ns.stop() == 0
