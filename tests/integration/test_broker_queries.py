"""BrokerQueries answers the agents' queries from the real broker, on a client of its
own that never joins the group whose commits it reads."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from kafka.admin import KafkaAdminClient

from stream.clients import KafkaSettings
from stream.clients.topics import TopicSpec, ensure_topics
from stream.worker.broker_queries import BrokerQueries
from tests.integration.test_hole_reader import produce

pytestmark = pytest.mark.integration


def test_end_offsets_and_committed_offsets_without_joining_the_group(kafka_bootstrap: str, unique_name) -> None:
    topic, group = unique_name("queries"), unique_name("queries-group")
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    ensure_topics(kafka, [TopicSpec(topic, 1, 1)])
    tp = TopicPartition(topic, 0)

    async def scenario() -> tuple[dict, int | None, int | None, int, int]:
        await produce(kafka, topic, [([b"a", b"b", b"c"], None), ([b"d", b"e"], "commit"), ([b"f"], "abort")])
        committer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **kafka.aiokafka_kwargs())
        await committer.start()
        try:
            committer.assign([tp])
            await committer.commit({tp: OffsetAndMetadata(2, "")})
        finally:
            await committer.stop()
        plain = BrokerQueries(kafka, group, read_committed=False)
        stable = BrokerQueries(kafka, group, read_committed=True)
        other = BrokerQueries(kafka, unique_name("nobody"), read_committed=False)
        try:
            ends = await plain.end_offsets([tp])
            committed = await plain.committed(tp)
            nothing = await other.committed(tp)
            stable_end = (await stable.end_offsets([tp]))[tp]
            members = _members(kafka, group)
        finally:
            for queries in (plain, stable, other):
                await queries.close()
        return ends, committed, nothing, stable_end, members

    ends, committed, nothing, stable_end, members = asyncio.run(scenario())
    # 3 plain records, 2 committed + a marker, 1 aborted + a marker: the log ends at 8.
    assert ends == {tp: 8}
    assert stable_end == 8  # no open transaction: the stable end is the end
    assert committed == 2 and nothing is None
    assert members == 0


def _members(kafka: KafkaSettings, group: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_list())
    try:
        description = admin.describe_groups([group]).get(group, {})
        return len(description.get("members") or [])
    finally:
        admin.close()
