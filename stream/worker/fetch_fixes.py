"""Two fixes to how faust's consumer fetches, for the table recovery that never ended
(three times in about 70 runs of the crash, rebalance and bad-input tests, and once in
CI, a worker's recovery after a rebalance got no changelog record, ever).

The recovery report caught it (stream/worker/recovery_watch.py): aiokafka had read the
changelog partitions under recovery to their end, faust had received none of their
records, and nothing would fetch them again. Two faust 0.15.3 behaviours make that
possible together:

1. faust hands aiokafka its *live* set of active partitions for each fetch, and the call
   can wait a second for records. A rebalance empties that set meanwhile (the revocation
   pauses everything, and so does the assignment until the recovery resumes the
   changelogs), and aiokafka reads an empty set as "every assigned partition": the fetch
   still waiting takes records of partitions faust never asked for, the changelogs the
   recovery has just sought included. ``own_partition_set`` gives each fetch a copy.
2. faust's ``getmany`` throws a fetched batch away when the flow is stopped (a
   rebalance, or a recovery not yet resumed), and breaks off mid-batch when the flow
   stops or the consumer generation changes. For source partitions the rebalance's seek
   to the committed offsets covers that (and stream/worker/offsets.py covers the rest),
   but a changelog partition under recovery was already sought, and its records, now
   past aiokafka's position, are gone: the recovery waits for them for good.
   ``recovered_getmany`` sends the consumer back to the recovery's own offset for every
   changelog partition under recovery whose fetched records it did not deliver.

Either fix alone ends the hang: tests/integration/test_worker_fetch_across_rebalance.py
forces that timing in a real worker, with both and with the second alone. Without them
the recovery waits until the recovery watch gives up on it (60 s) and reads the stalled
partitions again; without that too, it never ends. ``recovered_getmany`` is an edited copy
of faust's ``Consumer.getmany``; a unit test (tests/unit/worker/test_faust_patches.py)
pins the faust source it copies.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

log = logging.getLogger("stream.worker.fetch_fixes")


def apply_fetch_fixes() -> None:
    """Both fixes, once per process. (Marked on the class, not on the replaced methods,
    so that a test app may wrap the fixed methods after applying them.)"""
    from faust.transport.consumer import Consumer

    if getattr(Consumer, "fetch_fixes_applied", False):
        return
    Consumer.fetch_fixes_applied = True  # type: ignore[attr-defined]
    own_partition_set()
    recovered_getmany()


def own_partition_set() -> None:
    """Give each of faust's fetches a copy of its active partitions (fix 1 above)."""
    from faust.transport.drivers.aiokafka import Consumer

    getmany = Consumer._getmany

    async def _getmany(self: Any, active_partitions: set[Any] | None, timeout: float) -> Any:
        # The partitions active when the fetch starts, whatever happens to faust's set
        # while it waits (None, for a client-only app: all of them).
        partitions = None if active_partitions is None else set(active_partitions)
        return await getmany(self, partitions, timeout)

    Consumer._getmany = _getmany  # type: ignore[method-assign]


def recovered_getmany() -> None:
    """Replace faust's ``Consumer.getmany`` with one that, when it drops fetched records,
    sends the consumer back for those of changelog partitions under recovery (fix 2)."""
    from faust.transport.consumer import Consumer

    async def getmany(self: Any, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        # faust 0.15.3's Consumer.getmany (its comment on the round-robin order
        # omitted), with only the dropped records' changelogs sent for again.
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return

        records_it = self.scheduler.iterate(records)
        to_message = self._to_message  # localize
        # The change: which partitions' records were dropped, to send for them again.
        skipped: set[Any] = set()
        stopped_early = True
        if self.flow_active:
            for tp, record in records_it:
                if not self.flow_active:
                    break
                new_generation_id = self.app.consumer_generation_id
                if new_generation_id != generation_id:
                    self.log.dev(
                        "Generation id changed from %r to %r. Cancelling getmany.",
                        generation_id,
                        new_generation_id,
                    )
                    break
                if (
                    active_partitions is None
                    or tp in active_partitions
                    or tp in self._buffered_partitions
                ):
                    highwater_mark = self.highwater(tp)
                    self.app.monitor.track_tp_end_offset(tp, highwater_mark)
                    # convert timestamp to seconds from int milliseconds.
                    yield tp, to_message(tp, record)
                else:
                    skipped.add(tp)
            else:
                stopped_early = False
        else:
            self.log.dev(
                "getmany called while flow not active. Seek back to committed offsets."
            )
            try:
                await self.perform_seek()
            except Exception as ex:
                self.log.warning(f"exception performing seek when flow not active {ex}")
        # Stopped early: every partition of the batch may have lost records. Otherwise
        # only those whose records were skipped as no longer active.
        dropped = list(records) if stopped_early else list(skipped)
        if dropped:
            await reread_recovering_changelogs(self.app, dropped)

    Consumer.getmany = getmany  # type: ignore[method-assign]


async def reread_recovering_changelogs(app: Any, dropped: Iterable[Any]) -> None:
    """Seek ``app``'s consumer back, for each partition in ``dropped`` that the table
    recovery is reading, to the offset the recovery would seek to itself: the last
    changelog offset it applied (it skips records up to that one), or the beginning.
    So records delivered already come again too, and the recovery skips them."""
    offsets = recovery_offsets(app.tables.recovery, dropped)
    if not offsets:
        return
    log.info("fetching %d changelog partitions under recovery again: their fetched records were dropped", len(offsets))
    try:
        await app.consumer.seek_wait(offsets)
    except Exception as exc:  # a rebalance took them meanwhile: its recovery seeks them
        log.info("could not send the consumer back to %d changelog partitions: %r", len(offsets), exc)


def recovery_offsets(recovery: Any, partitions: Iterable[Any]) -> dict[Any, int]:
    """Where faust's recovery (``Recovery._seek_offsets``) would start reading each of
    ``partitions`` that it reads: an active one while the recovery runs (after it, the
    agents write that changelog themselves), a standby one at any time."""
    offsets: dict[Any, int] = {}
    for tp in partitions:
        if tp in recovery.active_tps and recovery.in_recovery:
            offsets[tp] = max(recovery.active_offsets[tp], 0)
        elif tp in recovery.standby_tps:
            offsets[tp] = max(recovery.standby_offsets[tp], 0)
    return offsets
