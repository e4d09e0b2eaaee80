"""Two `segments sender` processes in one group, real broker, one SMTP server: one sends,
the other stands by and takes over when the first dies; the one coming back later
applies the erasure notices it missed before sending anything of its own."""

from __future__ import annotations

import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer

from stream.sender.sink import SinkHandler
from tests.integration.sender_harness import SenderNamespace
from tests.integration.test_sender import _contacts, make_namespace  # noqa: F401 (a fixture)
from tests.unit.sender.helpers import action_record
from tests.unit.sender.test_erasure import notice_record

pytestmark = pytest.mark.integration

ERASED = ("erased-1", "erased-2")
HELD_SECONDS = 45  # the erased customers' actions are due this long after they are produced
FAULTY_COMMIT_SENDER = Path(__file__).parent / "apps" / "faulty_commit_sender.py"


def group_members(ns: SenderNamespace) -> list[dict[str, Any]]:
    """The sender group's members, once the group is stable (else [])."""
    admin = KafkaAdminClient(bootstrap_servers=ns.bootstrap)
    try:
        description = admin.describe_groups([ns.group_id]).get(ns.group_id, {})
    finally:
        admin.close()
    return list(description.get("members") or []) if description.get("group_state") == "Stable" else []


def partitions_held(member: dict[str, Any]) -> int:
    assignment = member.get("member_assignment") or {}
    return sum(len(item["partitions"]) for item in assignment.get("assigned_partitions") or [])


def immediate(customers: list[str]) -> list[dict[str, Any]]:
    return [action_record(customer_id=customer, recheck=[]) for customer in customers]


@pytest.mark.timeout(300)
def test_one_sender_of_a_group_sends_the_other_stands_by_takes_over_and_misses_no_erasure(make_namespace) -> None:  # noqa: F811
    """Two customers' actions are held in the first sender's ledger when it dies; the
    second takes over and reads both customers' erasure notices: one before the first
    comes back as standby (which applies it at once, as a standby does every minute), the
    other while it stands by (applied as it takes over again, before it sends)."""
    batches = [[f"b{batch}-{n}" for n in range(count)] for batch, count in ((1, 6), (2, 4), (3, 3))]
    handler = SinkHandler()
    # A killed sender's partitions move after 10 s instead of 45.
    first = make_namespace(contacts=_contacts(*ERASED, *(c for batch in batches for c in batch)), handler=handler,
                           extra="session_timeout_seconds = 10")
    second = first.another_instance("second")
    try:
        first.start()
        first.wait_for(lambda: first.health().get("active") is True, 60, "the first sender active")
        second.start()
        # The second joins the group and gets nothing: the first keeps every partition.
        second.wait_for(lambda: sorted(map(partitions_held, group_members(first))) == [0, 2], 60, "a stable group of two")
        assert first.health()["active"] is True and second.health()["active"] is False

        produced_at = datetime.now(UTC)
        held = {customer: action_record(customer_id=customer, recheck=[], not_before=produced_at + timedelta(seconds=HELD_SECONDS))
                for customer in ERASED}
        held_ids = {record["action_id"] for record in held.values()}
        actions = immediate(batches[0])
        expected = {a["action_id"] for a in actions}
        first.produce("actions", [*actions, *held.values()])
        first.wait_for(lambda: set(first.received_ids()) == expected, 60, "the first batch sent")
        first.wait_for(lambda: {first.states().get(i) for i in held_ids} == {"pending"}, 30, "the held actions in the first's ledger")
        assert second.ledger() == {}, "the standby read nothing"

        # The first dies: after its session the second takes over, and reads an erasure
        # notice for the first held action's customer.
        first.kill()
        second.wait_for(lambda: second.health().get("active") is True, 60, "the second sender taking over")
        actions = immediate(batches[1])
        expected |= {a["action_id"] for a in actions}
        second.produce("actions", [notice_record(customer_id=ERASED[0], at=datetime.now(UTC)), *actions])
        second.wait_for(lambda: {a["action_id"] for a in actions} <= set(second.received_ids()), 60, "the second batch sent")
        second.wait_for(lambda: second.metric("segments_sender_erasures_total") == 1, 30, "the first notice applied by the second")

        # The first comes back with its ledger, stands by, and applies that notice.
        first.start()
        first.wait_for(lambda: sorted(map(partitions_held, group_members(first))) == [0, 2], 60, "a stable group of two again")
        first.wait_for(lambda: first.states()[held[ERASED[0]]["action_id"]] == "skipped", 30, "the standby applying the first notice")
        assert first.health()["active"] is False and second.health()["active"] is True
        # The second notice comes while it stands by, within its minute between catch-ups.
        second.produce("actions", [notice_record(customer_id=ERASED[1], at=datetime.now(UTC))])
        second.wait_for(lambda: second.metric("segments_sender_erasures_total") == 2, 30, "the second notice applied by the second")
        # Standing by, it sends nothing, not even the other held action once it is due.
        wait = (produced_at + timedelta(seconds=HELD_SECONDS + 3) - datetime.now(UTC)).total_seconds()
        assert wait > 0, "the held actions came due before the first sender stood by again"
        time.sleep(wait)
        assert first.states()[held[ERASED[1]]["action_id"]] == "pending" and not held_ids & set(first.received_ids())

        # The second stops: the first takes over, applies the notice it missed before
        # sending anything, and the due action of the erased customer is never sent.
        assert second.stop() == 0
        first.wait_for(lambda: first.health().get("active") is True, 60, "the first sender taking over again")
        first.wait_for(lambda: first.states()[held[ERASED[1]]["action_id"]] == "skipped", 30, "the second held action cancelled")
        assert {first.ledger()[i]["reason"] for i in held_ids} == {"erased"}
        assert first.log.read_text().count("caught up with 1 erasure notice(s) read by other senders") == 2
        actions = immediate(batches[2])
        expected |= {a["action_id"] for a in actions}
        first.produce("actions", actions)
        first.wait_for(lambda: {a["action_id"] for a in actions} <= set(first.received_ids()), 60, "the third batch sent")
        time.sleep(2)

        received = Counter(first.received_ids())  # the two senders' SMTP server
        assert all(count == 1 for count in received.values()), f"delivered twice: {[i for i, n in received.items() if n > 1]}"
        assert set(received) == expected and not held_ids & set(received)
        # Each action is in the ledger of the sender that read it, and only there.
        first_sent = {i for i, row in first.ledger().items() if row["state"] == "sent"}
        second_sent = {i for i, row in second.ledger().items() if row["state"] == "sent"}
        assert first_sent | second_sent == expected and not first_sent & second_sent
        assert len(second_sent) == len(batches[1])
    finally:
        second.close()


@pytest.mark.timeout(300)
def test_actions_read_by_a_sender_that_died_before_committing_are_sent_once_by_the_one_that_took_over(make_namespace) -> None:  # noqa: F811
    """The active sender writes a batch to its ledger and dies before committing the
    offsets: the standby taking over reads and sends the batch; when the first comes back
    and becomes active again, it forgets the rows whose commit was not its own instead of
    sending them a second time."""
    customers = [f"c{n}" for n in range(5)]
    first = make_namespace(contacts=_contacts(*customers), extra="session_timeout_seconds = 10")
    second = first.another_instance("second")
    try:
        first.start(command=[sys.executable, str(FAULTY_COMMIT_SENDER)])
        first.wait_for(lambda: first.health().get("active") is True, 60, "the first sender active")
        second.start()
        second.wait_for(lambda: sorted(map(partitions_held, group_members(first))) == [0, 2], 60, "a stable group of two")

        actions = immediate(customers)
        ids = {a["action_id"] for a in actions}
        first.produce("actions", actions)
        first.wait_for(lambda: "STALLED" in first.log.read_text(), 60, "the first sender stalled before its commit")
        # Read into its ledger (the first poll's records: some or all of them), neither
        # confirmed nor sent.
        stalled = first.ledger()
        assert stalled and set(stalled) <= ids
        assert {(row["state"], row["confirmed"]) for row in stalled.values()} == {("pending", 0)}
        first.kill()

        second.wait_for(lambda: set(second.received_ids()) == ids, 60, "the batch sent by the second sender")
        first.start()
        first.wait_for(lambda: sorted(map(partitions_held, group_members(first))) == [0, 2], 60, "a stable group of two again")
        assert second.stop() == 0
        first.wait_for(lambda: first.health().get("active") is True, 60, "the first sender taking over")
        first.wait_for(lambda: first.ledger() == {}, 30, "the unconfirmed rows forgotten")
        assert f"{len(stalled)} action(s) read but not committed forgotten" in first.log.read_text()

        again = immediate(["c0"])  # the first sends, as active sender, what comes next
        first.produce("actions", again)
        first.wait_for(lambda: again[0]["action_id"] in first.received_ids(), 60, "a new action sent by the first sender")
        time.sleep(2)
        assert Counter(first.received_ids()) == Counter({*ids, again[0]["action_id"]}), "an action delivered twice, or lost"
    finally:
        second.close()


@pytest.mark.timeout(120)
def test_a_sender_refuses_a_group_whose_other_member_has_another_assignor(make_namespace) -> None:  # noqa: F811
    """What an older sender (kafka-python's range assignor) in the group looks like to a
    new one: a clear error, not two senders sharing the actions."""
    ns = make_namespace()
    older = KafkaConsumer(ns.topics["actions"], bootstrap_servers=ns.bootstrap, group_id=ns.group_id, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + 60
        while not older.assignment():
            assert time.monotonic() < deadline, "the range-assigned member never joined"
            older.poll(timeout_ms=500)
        ns.start(wait_ready=False)
        assert ns.process is not None and ns.process.wait(timeout=60) == 1
        assert "another member uses another partition assignor" in ns.log.read_text(), ns.log_tail()
    finally:
        older.close()


@pytest.mark.timeout(120)
def test_a_refused_commit_without_a_rebalance_loses_no_action(make_namespace) -> None:  # noqa: F811
    """The commit fails while the sender keeps its partitions: its consumer's position is
    past the records, so it must read them again itself (its rows, not covered by a
    commit, are forgotten and taken in again), and send each once."""
    customers = [f"c{n}" for n in range(5)]
    ns = make_namespace(contacts=_contacts(*customers))
    ns.start(command=[sys.executable, str(FAULTY_COMMIT_SENDER)], env={"COMMIT_FAULT": "fail"})
    actions = immediate(customers)
    ids = {a["action_id"] for a in actions}
    ns.produce("actions", actions)
    ns.wait_for(lambda: set(ns.received_ids()) == ids, 60, "every action sent")
    time.sleep(2)
    assert "FAILED" in ns.log.read_text() and "could not commit action offsets" in ns.log.read_text()
    assert Counter(ns.received_ids()) == Counter(ids)
    assert ns.stop() == 0
