"""`segments` whose faust consumer loses records the way faust's sometimes does after a
restart: fetched (the consumer's position moves past them) but never delivered to an
agent. For tests/integration/test_worker_lost_records.py.

Environment: LOSE_TOPIC (a source topic), LOSE_SECONDS (how long, from the first of
its records fetched, every record of it is dropped). Each dropped offset is printed as
"LOST <partition> <offset>", so the test can check the loss happened.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from faust.transport.consumer import Consumer

from stream.cli.main import main
from stream.worker.faust_patches import apply_faust_patches

# The worker's own changes to faust's consumer first (getmany among them), so the loss
# below wraps the getmany the worker really runs; applied once, start-up leaves it.
apply_faust_patches()

LOSE_TOPIC = os.environ["LOSE_TOPIC"]
LOSE_SECONDS = float(os.environ.get("LOSE_SECONDS", "3"))
getmany = Consumer.getmany
losing_since: list[float] = []


async def lossy_getmany(self: Consumer, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
    async for tp, message in getmany(self, timeout):
        if tp.topic == LOSE_TOPIC:
            if not losing_since:
                losing_since.append(time.monotonic())
            if time.monotonic() - losing_since[0] < LOSE_SECONDS:
                print(f"LOST {tp.partition} {message.offset}", flush=True)
                continue
        yield tp, message


Consumer.getmany = lossy_getmany  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.argv[0] = "segments"
    main()
