"""`segments` whose intake, once, is in the middle of a batch when a rebalance lets go
of the events its merger held: the timing that once forwarded a batch's later events
ahead of earlier ones of the same partition that were let go of (read again after the
rebalance, they came after them on segments-events; see ``intake_halted`` in
stream/worker/app.py). For tests/integration/test_worker_intake_across_rebalance.py.

The held batch is the first of an input partition whose merger queue still holds
earlier events of that partition, with an event at or after HOLD_FROM (RFC 3339: late
enough in the history that moving the partition's clock ahead fires time-caused
changes). Its records are taken from the broker as usual, then the intake waits until a
rebalance has started and let go of the held events, and goes on with them. Meanwhile
the merger releases nothing, so that what it held is still held when the rebalance
lets go of it. HOLD_ONCE_FILE is created by the first worker process that holds: the
others (the second worker joining) hold nothing. The process prints "INTAKE HOLDING"
when it starts waiting (the test then starts a second worker) and "INTAKE HELD" once
the rebalance let it go on.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import orjson

from stream.cli.main import main
from stream.worker import app as worker_app

HOLD_FROM = os.environ["HOLD_FROM"]
# After faust starts the revocation (app.rebalancing), the held events are let go of as
# it starts waiting for every delivered message's acknowledgement: at once, unless an
# agent's commit is in progress.
LET_GO_SECONDS = 1.0
REBALANCE_WAIT_SECONDS = 120.0
take_unhandled = worker_app.take_unhandled
holding = [False]


class HeldMerger(worker_app.EventTimeMerger):  # type: ignore[misc]
    instances: list[HeldMerger] = []

    def __init__(self) -> None:
        super().__init__()
        HeldMerger.instances.append(self)

    def release(self, *args: Any, **kwargs: Any) -> list[Any]:
        return [] if holding[0] else super().release(*args, **kwargs)

    def holds_events_of(self, tp: Any) -> bool:
        return bool(self._queues.get(tp))


async def take_unhandled_held(app: Any, holes: Any, progress: Any, tp: Any, events: list[Any]) -> Any:
    records = await take_unhandled(app, holes, progress, tp, events)
    if tp.topic.endswith("-events") or not records:
        return records  # the customer agent's, or nothing to hold
    latest = max(orjson.loads(record.value)["occurred_at"] for record in records)
    merger = HeldMerger.instances[0]
    if latest >= HOLD_FROM and merger.holds_events_of(tp) and first_to_hold():
        holding[0] = True
        print(f"INTAKE HOLDING {len(records)} records of {tp.topic}[{tp.partition}], {len(merger)} held", flush=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REBALANCE_WAIT_SECONDS
        while not app.rebalancing and loop.time() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(LET_GO_SECONDS)
        holding[0] = False
        print(f"INTAKE HELD across the rebalance: {app.rebalancing=}, {len(merger)} held", flush=True)
    return records


def first_to_hold() -> bool:
    try:
        os.close(os.open(os.environ["HOLD_ONCE_FILE"], os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


# build_app looks both up in its module when the worker starts.
worker_app.take_unhandled = take_unhandled_held
worker_app.EventTimeMerger = HeldMerger

if __name__ == "__main__":
    sys.argv[0] = "segments"
    main()
