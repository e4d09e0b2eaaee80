"""One active sender per group, the others standing by.

Each sender keeps its own ledger, and "no email twice" holds for one ledger only: an
action read into two ledgers could be sent from both. So the group's assignor gives
every partition of the actions topic to a single member, the *active* sender; the
others get nothing and send nothing until the active one leaves the group (a stop, a
crash past the session timeout), when one of them takes over where the group's offsets
stand.

Sticky: the member that held the partitions says so in its join metadata and keeps
them, so a standby joining (or rejoining) never moves them. With no such member the
partitions go to a static member (``group_instance_id``) before a dynamic one, then the
lowest id: any member would do, but every leader must pick the same one.

kafka-python asks the assignor for the join metadata and tells it its assignment, so
one instance per consumer keeps the member's own "I hold the partitions".
"""

from __future__ import annotations

from typing import Any

from kafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment, ConsumerProtocolSubscription

NAME = "segments-one-active-sender"
VERSION = 0
HELD = b"held"


def choose_active(members: list[tuple[str, str | None, bytes]]) -> str | None:
    """The member id to give every partition to, from ``(member_id, group_instance_id,
    user_data)`` of the members subscribed: one that held them, else a static member,
    else the lowest id."""
    if not members:
        return None

    def rank(member: tuple[str, str | None, bytes]) -> tuple[bool, bool, str, str]:
        member_id, instance_id, user_data = member
        return (user_data != HELD, instance_id is None, instance_id or "", member_id)

    return min(members, key=rank)[0]


class OneActiveSenderAssignor(AbstractPartitionAssignor):
    """Every partition of the subscribed topics to one member (:func:`choose_active`)."""

    name = NAME
    version = VERSION

    def __init__(self) -> None:
        self.holds_partitions = False
        self.assignments = 0  # how many the member has had: none until it first joined

    def assign(self, cluster: Any, members: list[Any]) -> dict[str, ConsumerProtocolAssignment]:
        topics = sorted({topic for member in members for topic in member.metadata.topics})
        active = choose_active([
            (member.member_id, member.group_instance_id, bytes(member.metadata.user_data or b"")) for member in members
        ])
        held: list[tuple[str, list[int]]] = []
        for topic in topics:
            partitions = cluster.partitions_for_topic(topic)
            if partitions:
                held.append((topic, sorted(partitions)))
        return {
            member.member_id: ConsumerProtocolAssignment(self.version, held if member.member_id == active else [], b"")
            for member in members
        }

    def metadata(self, topics: set[str]) -> ConsumerProtocolSubscription:
        return ConsumerProtocolSubscription(self.version, sorted(topics), HELD if self.holds_partitions else b"")

    def on_assignment(self, assignment: ConsumerProtocolAssignment, generation: Any) -> None:
        self.holds_partitions = bool(assignment.partitions())
        self.assignments += 1
