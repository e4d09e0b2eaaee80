"""stream/worker/faust_patches.py: running a delivery's first step directly and the rest
as a task would, and a pin on the faust code the patches were written against."""

from __future__ import annotations

import asyncio
import hashlib
import inspect

import pytest

from stream.worker import faust_patches
from stream.worker.faust_patches import _DONE, rest_of, step


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
}


def _source_hash(dotted: str) -> str:
    module_name, class_name, method_name = dotted.rsplit(".", 2)
    module = __import__(module_name, fromlist=[class_name])
    source = inspect.getsource(module)  # the file: the class attribute may be patched already
    start = source.index(f"    async def {method_name}(")
    end = source.index("\n    def ", start + 1)
    return hashlib.sha256(source[start:end].encode()).hexdigest()


@pytest.mark.parametrize("dotted", sorted(PINNED))
def test_the_patched_faust_code_is_the_version_the_patches_were_written_for(dotted: str) -> None:
    assert _source_hash(dotted) == PINNED[dotted], (
        f"{dotted} changed in this faust version: check stream/worker/faust_patches.py against it"
    )


def test_patches_apply_once() -> None:
    from faust.transport.consumer import Consumer

    faust_patches.apply_faust_patches(direct=True)
    patched = Consumer._drain_messages
    faust_patches.apply_faust_patches(direct=True)
    assert Consumer._drain_messages is patched
    assert getattr(patched, "direct_delivery", False)
