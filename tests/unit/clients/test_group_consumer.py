"""stream/clients/group_consumer.py: a join kafka-python left in flight counts as a
rejoin still needed, and a pin on the kafka-python code that relies on."""

from __future__ import annotations

from types import SimpleNamespace

from kafka.coordinator.consumer import ConsumerCoordinator

from stream.clients.group_consumer import finish_joins_left_in_flight
from tests.support.pins import method_source_sha256


def _member(join_task: object, rejoin_needed: bool = False) -> ConsumerCoordinator:
    """A coordinator past its first join: same metadata as assigned, same subscription."""
    member = ConsumerCoordinator.__new__(ConsumerCoordinator)
    member._subscription = SimpleNamespace(partitions_auto_assigned=lambda: True, subscription={"actions"})
    member.config = {"group_id": "g", "assignors": []}
    member._assignment_snapshot = member._metadata_snapshot = {"actions": {0, 1}}
    member._joined_subscription = {"actions"}
    member.rejoin_needed = rejoin_needed
    member._join_task = join_task
    member._auto_assign_all_partitions = lambda: False
    return member


def test_a_join_left_in_flight_is_a_rejoin_still_needed() -> None:
    finish_joins_left_in_flight()
    finish_joins_left_in_flight()  # once per process
    assert getattr(ConsumerCoordinator.need_rejoin, "finishes_joins_left_in_flight", False)
    assert not _member(join_task=None).need_rejoin()
    # The hang: the leader's own assignment made the snapshots equal again, and nothing
    # else asks for a rejoin, while the join poll() stopped waiting on was never applied.
    assert _member(join_task=SimpleNamespace(is_done=True)).need_rejoin()
    assert _member(join_task=None, rejoin_needed=True).need_rejoin()


# sha256 of kafka-python 3.0.12's BaseCoordinator.join_group_async: it leaves
# self._join_task in flight when poll()'s timer runs out, and sets it to None once a
# join is applied. An upgrade that changes it fails here: check the patch, re-pin.
PINNED_JOIN = "f9b7d8038dabf04d5e43becb43a0c5e24627431d2395c06e12c6c2a805fdf8b5"


def test_the_kafka_python_code_the_patch_relies_on_is_the_pinned_version() -> None:
    from kafka.coordinator import base

    assert method_source_sha256(base, "    async def join_group_async(self, timeout_ms=None):") == PINNED_JOIN, (
        "kafka-python's join_group_async changed: check stream/clients/group_consumer.py against it"
    )
