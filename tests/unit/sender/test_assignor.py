"""One active sender per group: every partition to one member, sticky to the one that
held them."""

from __future__ import annotations

from types import SimpleNamespace

from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment, ConsumerProtocolSubscription

from stream.sender.assignor import HELD, OneActiveSenderAssignor, choose_active


class Cluster:
    def __init__(self, partitions: dict[str, set[int]]) -> None:
        self.partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions.get(topic)


def member(member_id: str, assignor: OneActiveSenderAssignor, instance_id: str | None = None) -> SimpleNamespace:
    """A JoinGroup member as the leader sees it: its metadata encoded and decoded again."""
    metadata = ConsumerProtocolSubscription.decode(assignor.metadata({"actions"}).encode())
    return SimpleNamespace(member_id=member_id, group_instance_id=instance_id, metadata=metadata)


def assigned(assignment: dict[str, ConsumerProtocolAssignment]) -> dict[str, list[tuple[str, int]]]:
    decoded = {member_id: ConsumerProtocolAssignment.decode(value.encode()) for member_id, value in assignment.items()}
    return {member_id: [(tp.topic, tp.partition) for tp in value.partitions()] for member_id, value in decoded.items()}


def test_every_partition_goes_to_one_member_and_stays_with_it_when_another_joins() -> None:
    cluster = Cluster({"actions": {0, 1, 2}})
    first, second = OneActiveSenderAssignor(), OneActiveSenderAssignor()
    # Nobody held them: the lowest member id.
    result = assigned(first.assign(cluster, [member("m-b", first), member("m-a", second)]))
    assert result == {"m-a": [("actions", 0), ("actions", 1), ("actions", 2)], "m-b": []}
    for assignor, member_id in ((first, "m-b"), (second, "m-a")):
        assignor.on_assignment(ConsumerProtocolAssignment.decode(first.assign(cluster, [
            member("m-b", first), member("m-a", second)])[member_id].encode()), 1)
    assert (first.holds_partitions, second.holds_partitions) == (False, True)
    # A third member with a lower id joins: the holder keeps them, and says so in its metadata.
    third = OneActiveSenderAssignor()
    result = assigned(first.assign(cluster, [member("m-b", first), member("m-a", second), member("m-0", third)]))
    assert result["m-a"] == [("actions", 0), ("actions", 1), ("actions", 2)] and result["m-b"] == result["m-0"] == []
    # The holder leaves: one of the others takes them all.
    result = assigned(first.assign(Cluster({"actions": {0, 1, 2, 3}}), [member("m-b", first), member("m-0", third)]))
    assert result == {"m-0": [("actions", 0), ("actions", 1), ("actions", 2), ("actions", 3)], "m-b": []}


def test_the_choice_is_the_same_for_every_leader() -> None:
    members = [("m-2", None, b""), ("m-1", None, b""), ("m-3", "sender-b", b""), ("m-4", "sender-a", b"")]
    assert choose_active(members) == "m-4"  # a static member first (it comes back as itself)
    assert choose_active(list(reversed(members))) == "m-4"
    assert choose_active([*members, ("m-9", None, HELD)]) == "m-9"  # whoever held them keeps them
    assert choose_active([("m-2", None, b""), ("m-1", None, b"")]) == "m-1"
    assert choose_active([]) is None


def test_an_empty_assignment_means_standing_by() -> None:
    assignor = OneActiveSenderAssignor()
    assignor.on_assignment(ConsumerProtocolAssignment(0, [("actions", [0, 1])], b""), 3)
    assert assignor.holds_partitions and assignor.metadata({"actions"}).user_data == HELD
    assignor.on_assignment(ConsumerProtocolAssignment(0, [], b""), 4)
    assert not assignor.holds_partitions and assignor.metadata({"actions"}).user_data == b""
