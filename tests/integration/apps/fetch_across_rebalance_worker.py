"""`segments` whose consumer hits, at its first rebalance with a fetch waiting, the timing that once left a
table recovery waiting for good (stream/worker/fetch_fixes.py): a fetch that faust
started before the rebalance finds nothing until the recovery has sought its changelog
partitions, and returns while the recovery has not yet resumed the flow. For
tests/integration/test_worker_fetch_across_rebalance.py.

Environment: HOLD_SECONDS (how long the recovery waits between its seek and resuming
the flow, default 1). It prints NO_FETCH_IN_FLIGHT at a rebalance it cannot hold. UNFIXED: fixes of stream/worker/fetch_fixes.py left out, by name
(own_partition_set, recovered_getmany, comma-separated), or 1 for both: the recovery
then waits until the recovery watch (stream/worker/recovery_watch.py) reads the
partitions again, after RECOVERY_REPORT_SECONDS (default: the watch's own, 60 s). The process prints "FETCH HELD" when a fetch waited across the
rebalance, so the test can check the timing was the one intended.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from aiokafka.consumer.fetcher import Fetcher
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from stream.cli.main import main
from stream.worker import fetch_fixes, recovery_watch

HOLD_SECONDS = float(os.environ.get("HOLD_SECONDS", "1"))
AFTER_HOLD_SECONDS = 2.0
if "RECOVERY_REPORT_SECONDS" in os.environ:
    recovery_watch.RECOVERY_REPORT_SECONDS = float(os.environ["RECOVERY_REPORT_SECONDS"])
# Set from the first partition revocation (with a fetch waiting) until the recovery has
# sought: fetches meanwhile find nothing. Read on the consumer thread, written on the main one.
holding = {"armed": True, "now": False, "fetch_held": False}
NO_FETCH_IN_FLIGHT = "NO FETCH IN FLIGHT at this rebalance: the next one is held instead"

fetched_records = Fetcher.fetched_records


in_flight = [0]  # fetches running on the consumer thread


async def fetched_records_held(self: Fetcher, partitions: Any, timeout: float = 0, max_records: Any = None) -> Any:
    in_flight[0] += 1
    try:
        return await _fetched_records_held(self, partitions, timeout, max_records)
    finally:
        in_flight[0] -= 1


async def _fetched_records_held(self: Fetcher, partitions: Any, timeout: float, max_records: Any) -> Any:
    """aiokafka's, in short steps, finding nothing while a hold is on; a fetch that was
    held then waits (up to AFTER_HOLD_SECONDS) for the records the seek brings."""
    deadline = time.monotonic() + timeout
    held = False
    while True:
        if holding["now"]:
            held = holding["fetch_held"] = True
            await asyncio.sleep(0.01)
            deadline = time.monotonic() + AFTER_HOLD_SECONDS
            continue
        try:
            records = await fetched_records(self, partitions, min(0.05, max(0.0, deadline - time.monotonic())), max_records)
        except BaseException as error:
            if held:
                print(f"FETCH HELD across the rebalance, then ended by {error!r}", flush=True)
            raise
        if records or time.monotonic() >= deadline:
            if held:
                print(f"FETCH HELD across the rebalance: {len(records)} partitions' records", flush=True)
            return records


on_partitions_revoked = Consumer.on_partitions_revoked


async def on_partitions_revoked_held(self: Consumer, revoked: Any) -> None:
    if holding["armed"] and self.app.tables.recovery.completed.is_set():
        # faust starts no fetch once the rebalance has stopped the flow: the timing needs
        # one already waiting. An idle worker nearly always has one; when this rebalance
        # fell between two, the next one is held instead (the test makes another).
        if in_flight[0]:
            holding["armed"], holding["now"] = False, True
        else:
            print(NO_FETCH_IN_FLIGHT, flush=True)
    await on_partitions_revoked(self, revoked)


seek_offsets = Recovery._seek_offsets


async def seek_offsets_held(self: Recovery, consumer: Any, tps: Any, offsets: Any, title: str) -> None:
    await seek_offsets(self, consumer, tps, offsets, title)
    if holding["now"] and title == "active":
        holding["now"] = False  # the waiting fetch now finds the records from the seek
        if not holding["fetch_held"]:
            # The fetch counted at the revocation returned before it saw the hold (its
            # own timeout ran out meanwhile), and faust starts none while the flow is
            # stopped: nothing was held, so the next rebalance is held instead.
            holding["armed"] = True
            print(NO_FETCH_IN_FLIGHT, flush=True)
            return
        await asyncio.sleep(HOLD_SECONDS)  # the flow stays stopped meanwhile


Fetcher.fetched_records = fetched_records_held  # type: ignore[method-assign]
Consumer.on_partitions_revoked = on_partitions_revoked_held  # type: ignore[method-assign]
Recovery._seek_offsets = seek_offsets_held  # type: ignore[method-assign]

UNFIXED = set(os.environ.get("UNFIXED", "").split(",")) - {""}
if UNFIXED:
    # Marked as applied, so the worker's own start-up leaves the fixes to this.
    Consumer.fetch_fixes_applied = True  # type: ignore[attr-defined]
    if not UNFIXED & {"1", "own_partition_set"}:
        fetch_fixes.own_partition_set()
    if not UNFIXED & {"1", "recovered_getmany"}:
        fetch_fixes.recovered_getmany()

if __name__ == "__main__":
    sys.argv[0] = "segments"
    main()
