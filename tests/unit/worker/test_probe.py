"""/readyz's rule: partitions of the source topic assigned, no rebalance in progress,
table recovery finished."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from stream.worker.probe import app_ready


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
