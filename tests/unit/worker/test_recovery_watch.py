"""stream/worker/recovery_watch.py: one report per recovery that outlasts its limit, and which
partitions it then reads again."""

from __future__ import annotations

import asyncio

from stream.worker.recovery_watch import RecoveryWatch, task_stacks


def test_a_long_recovery_is_reported_once_and_each_new_recovery_counts_afresh() -> None:
    watch = RecoveryWatch(report_after=60)
    assert not watch.due(False, 0)
    assert not watch.due(True, 100)  # starts
    assert not watch.due(True, 159)
    assert watch.due(True, 160)
    assert not watch.due(True, 500)  # once
    assert not watch.due(False, 501)  # ended
    assert not watch.due(True, 600)
    assert not watch.due(True, 659)
    assert watch.due(True, 660)


def test_the_report_names_where_each_task_waits() -> None:
    async def parked_on_an_event() -> None:
        await asyncio.Event().wait()

    async def main() -> str:
        task = asyncio.create_task(parked_on_an_event(), name="parked")
        await asyncio.sleep(0)
        try:
            return task_stacks()
        finally:
            task.cancel()

    report = asyncio.run(main())
    assert "--- parked\n" in report
    # Down to the innermost wait, through the coroutines in between.
    parked = report.split("--- parked\n")[1].split("---")[0]
    assert "parked_on_an_event" in parked
    assert "locks.py" in parked  # asyncio.Event.wait


def test_faust_state_reads_a_real_faust_app() -> None:
    import faust

    from stream.worker.recovery_watch import faust_state

    app = faust.App("recovery-watch-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    state = faust_state(app)
    assert "flow_active=" in state and "buffered=[]" in state and "changelog_queue=0" in state


def test_the_report_shows_aiokafkas_own_partition_state() -> None:
    import asyncio
    from types import SimpleNamespace

    from aiokafka import AIOKafkaConsumer, TopicPartition

    from stream.worker.recovery_watch import aiokafka_state

    async def report() -> list[str]:
        consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")  # never started: no broker needed
        consumer.assign([TopicPartition("orders-changelog", 1)])
        consumer.pause(TopicPartition("orders-changelog", 1))
        app = SimpleNamespace(consumer=SimpleNamespace(_thread=SimpleNamespace(_consumer=consumer)))
        try:
            return aiokafka_state(app)
        finally:
            await consumer.stop()

    lines = asyncio.run(report())
    assert lines[0] == "aiokafka fetched, undelivered: fetcher not started"
    assert lines[1].startswith("aiokafka orders-changelog[1]: paused=True status=")
    assert "position=None" in lines[1]
    assert aiokafka_state(SimpleNamespace())[0].startswith("aiokafka state unavailable")


def test_stalled_partitions_are_those_still_short_that_got_nothing_for_a_while() -> None:
    from collections import Counter
    from types import SimpleNamespace

    from stream.worker.recovery_watch import stalled_partitions

    recovery = SimpleNamespace(
        active_remaining=lambda: Counter({"never got one": 12, "quiet": 5, "busy": 7, "done": 0}),
        _active_events_received_at={"quiet": 100.0, "busy": 158.0, "done": 10.0},
    )
    assert stalled_partitions(recovery, now=160.0, quiet_seconds=60.0) == ["never got one", "quiet"]
