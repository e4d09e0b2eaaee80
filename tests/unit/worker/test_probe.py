"""/readyz's rule: partitions of the source topic assigned, no rebalance in progress,
table recovery finished; and the consumer offsets the ops endpoints export."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faust.types import TP

from stream.worker.probe import SourceLogBounds, app_ready, group_offsets


def app_stub(*, topics=("segments-events",), rebalancing=False, in_recovery=False, recovered=True):
    completed = asyncio.Event()
    if recovered:
        completed.set()
    assignment = [SimpleNamespace(topic=topic, partition=0) for topic in topics]
    return SimpleNamespace(
        rebalancing=rebalancing, in_recovery=in_recovery,
        consumer=SimpleNamespace(assignment=lambda: assignment),
        tables=SimpleNamespace(recovery=SimpleNamespace(completed=completed)),
    )


def test_ready_only_when_assigned_recovered_and_not_rebalancing() -> None:
    assert app_ready(app_stub(), "segments-events")
    assert not app_ready(app_stub(topics=("segments-customers-changelog",)), "segments-events")
    assert not app_ready(app_stub(topics=()), "segments-events")
    assert not app_ready(app_stub(rebalancing=True), "segments-events")
    assert not app_ready(app_stub(in_recovery=True), "segments-events")
    assert not app_ready(app_stub(recovered=False), "segments-events")


class QueriesStub:
    def __init__(self, starts: dict, ends: dict) -> None:
        self.starts, self.ends, self.asked = starts, ends, []

    async def beginning_offsets(self, partitions: list) -> dict:
        self.asked.append(list(partitions))
        return {tp: self.starts[tp] for tp in partitions}

    async def end_offsets(self, partitions: list) -> dict:
        return {tp: self.ends[tp] for tp in partitions}


def offsets_app(committed: dict, highwaters: dict, queries: QueriesStub) -> SimpleNamespace:
    assignment = [ORDERS_0, ORDERS_1, CARTS_0, CHANGELOG_0]
    return SimpleNamespace(
        consumer=SimpleNamespace(assignment=lambda: assignment, _committed_offset=committed,
                                 highwater=lambda tp: highwaters.get(tp)),
        broker_queries=queries,
    )


ORDERS_0, ORDERS_1, CARTS_0 = TP("orders", 0), TP("orders", 1), TP("carts", 0)
CHANGELOG_0 = TP("segments-customers-changelog", 0)


def test_a_partition_without_a_committed_offset_or_a_log_end_gets_them_from_the_broker() -> None:
    # orders/0: committed and fetched; orders/1: never committed, 7 records from offset 3
    # (the rest deleted by retention); carts/0: committed but never fetched (the worker is
    # still recovering its tables).
    queries = QueriesStub(starts={ORDERS_1: 3, CARTS_0: 0}, ends={ORDERS_1: 10, CARTS_0: 9})
    app = offsets_app({ORDERS_0: 5, CARTS_0: 4}, {ORDERS_0: 8, ORDERS_1: 10}, queries)
    topics = {"orders", "carts"}
    bounds = SourceLogBounds()

    before = {(o.topic, o.partition): o.lag for o in group_offsets(app, topics, bounds)}
    assert before == {("orders", 0): 3, ("orders", 1): None, ("carts", 0): None}

    asyncio.run(bounds.refresh(app, topics))
    assert queries.asked == [[CARTS_0, ORDERS_1]]  # only what the consumer cannot answer
    rows = {(o.topic, o.partition): o for o in group_offsets(app, topics, bounds)}
    assert {key: row.lag for key, row in rows.items()} == {("orders", 0): 3, ("orders", 1): 7, ("carts", 0): 5}
    assert rows["orders", 1].committed is None and rows["orders", 1].unread_from == 3
    assert rows["carts", 0].unread_from is None and rows["carts", 0].end == 9

    # Once every partition is committed and fetched, nothing is asked and nothing is kept.
    app.consumer._committed_offset.update({ORDERS_1: 10})
    app.consumer.highwater = lambda tp: 10
    asyncio.run(bounds.refresh(app, topics))
    assert len(queries.asked) == 1 and bounds.of(ORDERS_1) == (None, None)
