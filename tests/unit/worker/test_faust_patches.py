"""stream/worker/faust_patches.py: running a delivery's first step directly and the rest
as a task would, fetching emptied stream buffers' messages again, and a pin on the faust
code the patches were written against."""

from __future__ import annotations

import asyncio

import pytest

from stream.worker import faust_patches
from stream.worker.faust_patches import _DONE, reread_cleared_messages, rest_of, step
from tests.support.pins import method_source_sha256


def test_a_coroutine_that_never_waits_finishes_in_its_first_step() -> None:
    delivered: list[int] = []

    async def deliver() -> None:
        delivered.append(1)

    assert step(deliver()) is _DONE
    assert delivered == [1]


def test_an_exception_of_the_first_step_propagates() -> None:
    async def deliver() -> None:
        raise ValueError("bad message")

    with pytest.raises(ValueError, match="bad message"):
        step(deliver())


def test_the_rest_runs_as_a_task_would_through_futures_and_bare_yields() -> None:
    async def scenario() -> tuple[str, list[str]]:
        loop = asyncio.get_running_loop()
        space = loop.create_future()
        trace: list[str] = []

        async def deliver() -> str:
            trace.append("first step")
            got = await space  # a full buffer
            trace.append(f"got {got}")
            await asyncio.sleep(0)  # a bare yield
            trace.append("after a bare yield")
            return "delivered"

        coroutine = deliver()
        waiting_on = step(coroutine)
        assert waiting_on is space
        rest = asyncio.ensure_future(rest_of(coroutine, waiting_on))
        await asyncio.sleep(0.01)
        assert not rest.done()
        space.set_result("room")
        return await rest, trace

    result, trace = asyncio.run(scenario())
    assert result == "delivered"
    assert trace == ["first step", "got room", "after a bare yield"]


def test_cancelling_the_rest_cancels_inside_the_coroutine_where_it_waits() -> None:
    async def scenario() -> tuple[list[str], asyncio.Future]:
        loop = asyncio.get_running_loop()
        never = loop.create_future()
        trace: list[str] = []

        async def deliver() -> None:
            try:
                await never
            except asyncio.CancelledError:
                trace.append("cancelled where it waited")
                raise
            finally:
                trace.append("cleaned up")

        coroutine = deliver()
        rest = asyncio.ensure_future(rest_of(coroutine, step(coroutine)))
        await asyncio.sleep(0)
        rest.cancel()
        with pytest.raises(asyncio.CancelledError):
            await rest
        return trace, never

    trace, never = asyncio.run(scenario())
    assert trace == ["cancelled where it waited", "cleaned up"]
    assert never.cancelled()


def test_an_exception_of_a_later_step_propagates() -> None:
    async def scenario() -> None:
        async def deliver() -> None:
            await asyncio.sleep(0)
            raise ValueError("decode failed")

        coroutine = deliver()
        await rest_of(coroutine, step(coroutine))

    with pytest.raises(ValueError, match="decode failed"):
        asyncio.run(scenario())


# sha256 of the faust 0.15.3 source the patches copy or wrap. A faust upgrade that
# changes one fails here: compare the new source with the patch, adapt it, re-pin.
PINNED = {
    "faust.transport.consumer.Consumer._drain_messages": "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417",
    # reread_cleared_messages relies on its order: the seek, then the buffers emptied.
    "faust.tables.recovery.Recovery.on_recovery_completed": "f8937f60a323a10bfa9fa108f37fcac5a958a6d9d3c1acc8515e46093c7f5c8a",
    # fetch_fixes copies getmany; own_partition_set relies on _wait_next_records (hashed
    # with it) passing faust's live set of active partitions.
    "faust.transport.consumer.Consumer.getmany": "36c5198abf3de6276a12f80c02552f32dffab2f1dbef3078a5b76db256119efc",
    # recovery_offsets computes what this seeks to; hashed with _slurp_changelogs, which
    # skips the records it has applied already.
    "faust.tables.recovery.Recovery._seek_offsets": "ec065d0125f00114d719f3570935d6ff817a7837749d1c32250c979468305530",
    # exactly_once_recovery replaces it (faust's answered from aiokafka's cached last
    # stable offset under exactly-once) ...
    "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._highwaters": "a7f4f97d9f32aca2777713e22671d70eae4b3ae51541bb09a90448ce83acefce",
    # ... ends a recovery the way its _maybe_signal_recovery_end does, and runs this loop
    # from its source with its detect_aborted_tx branch removed (without_recovery_guess).
    "faust.tables.recovery.Recovery._slurp_changelogs": "63d17d752865cd1a9191407bb79047364fc925bc68a8c8f0e2cef9621e52fdcf",
    # tables_without_start_delay replaces it with its body less the sleep.
    "faust.tables.manager.TableManager.on_start": "3e07038c274666eebe26827235641a92ba3e27c1ba13b5ca2dc24cb748def90b",
}


def _source_hash(dotted: str) -> str:
    module_name, class_name, method_name = dotted.rsplit(".", 2)
    module = __import__(module_name, fromlist=[class_name])
    return method_source_sha256(module, f"    async def {method_name}(")


@pytest.mark.parametrize("dotted", sorted(PINNED))
def test_the_patched_faust_code_is_the_version_the_patches_were_written_for(dotted: str) -> None:
    assert _source_hash(dotted) == PINNED[dotted], (
        f"{dotted} changed in this faust version: check stream/worker/faust_patches.py against it"
    )


def test_patches_apply_once() -> None:
    from faust.transport.consumer import Consumer

    faust_patches.apply_faust_patches()
    patched = Consumer._drain_messages
    faust_patches.apply_faust_patches()
    assert Consumer._drain_messages is patched
    assert getattr(patched, "direct_delivery", False)


class _Message:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        from faust.types import TP

        self.tp, self.offset = TP(topic, partition), offset


class _Event:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self.message = _Message(topic, partition, offset)


class _Consumer:
    def __init__(self, assigned: set, flow_active: bool) -> None:
        self.assigned, self.flow_active = assigned, flow_active
        self.seeks: list[dict] = []

    def assignment(self) -> set:
        return self.assigned

    async def seek_wait(self, offsets: dict) -> None:
        self.seeks.append(dict(offsets))


def _app_with_buffers(flow_active: bool) -> tuple[object, object, list]:
    from types import SimpleNamespace

    from faust.types import TP
    from mode.utils.queues import FlowControlEvent, FlowControlQueue

    flow_control = FlowControlEvent(initially_suspended=False)
    buffers = [FlowControlQueue(maxsize=10, flow_control=flow_control, clear_on_resume=True) for _ in range(2)]
    # Offsets 7, 8 of orders[0] and 3 of orders[1] in one buffer, 5 of orders[0] and a
    # changelog record in the other; orders[2] is no longer assigned.
    for event in (_Event("orders", 0, 7), _Event("orders", 0, 8), _Event("orders", 1, 3), _Event("orders", 2, 9)):
        buffers[0].put_nowait(event)
    for event in (_Event("orders", 0, 5), _Event("customers-changelog", 0, 40)):
        buffers[1].put_nowait(event)
    consumer = _Consumer({TP("orders", 0), TP("orders", 1), TP("customers-changelog", 0)}, flow_active)
    app = SimpleNamespace(
        flow_control=flow_control, _consumer=consumer,
        consumer=consumer, tables=SimpleNamespace(changelog_topics={"customers-changelog"}),
    )
    reread_cleared_messages(app)
    return app, consumer, buffers


def test_messages_thrown_out_of_stream_buffers_are_fetched_again() -> None:
    from faust.types import TP

    async def scenario() -> tuple[list, list]:
        app, consumer, buffers = _app_with_buffers(flow_active=True)
        app.flow_control.resume()  # what faust does at the end of a recovery: empties them
        await asyncio.sleep(0.01)
        return consumer.seeks, [buffer.qsize() for buffer in buffers]

    seeks, sizes = asyncio.run(scenario())
    assert sizes == [0, 0]
    # The first emptied offset of each assigned source partition; no changelog.
    assert seeks == [{TP("orders", 0): 5, TP("orders", 1): 3}]


def test_buffers_emptied_while_the_flow_is_stopped_are_left_to_the_rebalance() -> None:
    async def scenario() -> tuple[list, list]:
        app, consumer, buffers = _app_with_buffers(flow_active=False)
        app.flow_control.clear()  # what faust does when partitions are revoked
        await asyncio.sleep(0.01)
        return consumer.seeks, [buffer.qsize() for buffer in buffers]

    assert asyncio.run(scenario()) == ([], [0, 0])


def test_the_table_manager_starts_its_tables_without_the_idle_second() -> None:
    from faust.tables.manager import TableManager

    faust_patches.tables_without_start_delay()
    calls: list[str] = []

    class Recovery:
        async def start(self) -> None:
            calls.append("recovery started")

    class Manager:
        should_stop = False
        recovery = Recovery()

        async def sleep(self, seconds: float) -> None:
            raise AssertionError(f"slept {seconds} s")

        async def _update_channels(self) -> None:
            calls.append("tables registered")

    asyncio.run(TableManager.on_start(Manager()))
    assert calls == ["tables registered", "recovery started"]
    Manager.should_stop = True
    calls.clear()
    asyncio.run(TableManager.on_start(Manager()))
    assert calls == []
