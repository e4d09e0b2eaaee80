"""Two fixes to faust's table recovery under exactly-once (faust 0.15.3).

1. **Where the recovery stops: the broker's end, not a cached one.** faust asks its
   consumer for the end of each changelog partition before recovering it. Under
   exactly-once it answers with aiokafka's ``last_stable_offset``, which aiokafka learns
   only from fetch responses: for a partition not fetched since the assignment it is
   None, which faust turns into "ends at -1". In 8 clean restarts of an exactly-once
   worker (its RocksDB intact), 5 recovered nothing and 3 crashed at start with
   ``ConsistencyError: The persisted offset ... is higher than the last offset in that
   topic (highwater)`` (faust-streaming issue #158). The start after such a crash (an
   unclean stop: the worker rebuilds local state from the changelogs) got the same
   answer, recovered nothing, and ran with empty tables (its census 0 while the
   changelogs held 2,000 customers). A rebalance that gave a worker back partitions it
   had owned before recovered nothing for them either: its stale local state processed
   events again whose changes were already committed, and a read_committed consumer
   saw 1,216 of 4,452 changes twice. ``broker_highwaters`` asks the broker every time:
   ``end_offsets``, which under ``read_committed`` is the last stable offset too
   (ListOffsets carries the consumer's isolation level).

2. **When the recovery ends: once only transaction markers are left.** faust counts a
   changelog partition recovered once it has read the record just before the end. Under
   exactly-once a partition's last offset is usually a commit marker, which no consumer
   receives; faust notices only after two 5-second waits in a row with no changelog
   record (``detect_aborted_tx`` in ``Recovery._slurp_changelogs``), so a start, restart
   or rebalance of an exactly-once worker stood still for up to 10 s (the playbooks
   SIGKILL test: recovery ended 10.0 s after it resumed the flow; with this, 1.5 s).
   ``settle_recovery_tails`` checks, for each partition the recovery still waits on and
   that has been quiet for QUIET_SECONDS, the rest of it (``read_committed``, from the
   record after the last one applied to the end the recovery waits for) with a consumer
   of its own. No record there means nothing is left to apply: the partition is marked
   read to its end, as ``detect_aborted_tx`` marks it, and once none is left the
   recovery ends the way faust ends it (``_maybe_signal_recovery_end``). A record found
   there is one faust still has to deliver; the partition is left to it.

3. **No ending on a guess.** faust's own end for a rest of markers
   (``detect_aborted_tx``) counts a partition read to its end once the consumer's
   *position* has reached the end, although the records up to there may still be on
   their way to the recovery's queue; it then skips them as already seen. It runs
   after two empty 5-second waits in a row, but the count of those waits is kept from
   one recovery to the next (the loop runs for the app's life, and idles between
   recoveries), so in a rebalance after a quiet spell it could run within the new
   recovery's first seconds. Seen in the rebalance test under load: a worker given
   back its partitions marked them recovered 0.2 s into a recovery from offset 0,
   kept its stale state, processed again the events the other worker had handled, and
   a read_committed consumer saw 1,216 changes twice. ``without_recovery_guess``
   turns that branch off in faust's loop; fix 2 decides from what the broker holds.

tests/unit/worker/test_faust_patches.py pins the faust source all three rely on.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import textwrap
import time
from typing import Any

from stream.clients import KafkaSettings

log = logging.getLogger("stream.worker.exactly_once_recovery")

CHECK_SECONDS = 0.25
QUIET_SECONDS = 0.25
# A rest of markers alone ends only after one empty wait for records: keep it short.
REST_POLL_MS = 50


def broker_highwaters() -> None:
    """Fix 1, once per process: faust's consumer thread answers "where do these
    partitions end" from the broker, whatever the processing guarantee."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    async def _highwaters(self: Any, partitions: list[Any]) -> Any:
        # Under read_committed, the broker answers with the last stable offset.
        return await self._ensure_consumer().end_offsets(partitions)

    AIOKafkaConsumerThread._highwaters = _highwaters  # type: ignore[method-assign]


# The branch of faust 0.15.3's Recovery._slurp_changelogs that fix 3 turns off.
FAUST_GUESS = "if timeout and self.app.in_transaction and timeout_count > 1:"


def without_recovery_guess() -> None:
    """Fix 3, once per process: faust's recovery loop, from its own source with the
    ``detect_aborted_tx`` branch turned off (exactly-once apps end a rest of markers
    with fix 2, ``settle_recovery_tails``)."""
    from faust.tables import recovery as recovery_module

    task = recovery_module.Recovery._slurp_changelogs
    if getattr(task.fun, "without_recovery_guess", False):
        return
    lines, first_line = inspect.getsourcelines(task.fun)
    source = textwrap.dedent("".join(lines))
    if source.count(FAUST_GUESS) != 1:
        raise RuntimeError("faust's Recovery._slurp_changelogs is not the one fix 3 was written for")
    # Blank lines first: tracebacks point at the lines of faust's file.
    source = "\n" * (first_line - 1) + source.replace(FAUST_GUESS, "if False:  # fix 3 (stream.worker.exactly_once_recovery)")
    namespace: dict[str, Any] = {}
    exec(compile(source, recovery_module.__file__, "exec"), vars(recovery_module), namespace)  # noqa: S102
    patched = namespace["_slurp_changelogs"]  # a ServiceTask: the source keeps faust's @Service.task
    patched.fun.without_recovery_guess = True
    recovery_module.Recovery._slurp_changelogs = patched


def quiet_unfinished(recovery: Any, now: float, quiet_seconds: float) -> dict[Any, tuple[int, int]]:
    """tp -> (first offset not applied, the end the recovery waits for) of each active
    changelog partition the recovery still needs and that got no record for
    ``quiet_seconds`` (counting from the recovery's start if it got none)."""
    received_at = recovery._active_events_received_at  # tp -> monotonic time of its last record
    started_at = recovery._recovery_started_at or now
    offsets = recovery.active_offsets
    quiet = {}
    for tp, highwater in recovery.active_highwaters.items():
        applied = offsets.get(tp)
        if highwater is None or applied is None or applied >= highwater:
            continue
        if now - received_at.get(tp, started_at) >= quiet_seconds:
            # faust's highwater is the partition's end offset less one.
            quiet[tp] = (applied + 1, highwater + 1)
    return quiet


def mark_read_to_end(recovery: Any, tp: Any, applied_before: int) -> bool:
    """Count ``tp`` as read to its end, as ``detect_aborted_tx`` does; only if the
    recovery has applied nothing of it since the check that found its rest empty."""
    if recovery.active_offsets.get(tp) != applied_before:
        return False
    recovery.active_offsets[tp] = recovery.active_highwaters[tp]
    return True


def end_recovery_if_done(recovery: Any) -> bool:
    """What faust's ``_maybe_signal_recovery_end`` does once nothing is left."""
    if not recovery.in_recovery or recovery.need_recovery():
        return False
    recovery.flush_buffers()
    recovery._set_recovery_ended()
    recovery.signal_recovery_end.set()
    return True


async def settle_marker_tails(app: Any, kafka: KafkaSettings, records_found_at: dict[Any, int]) -> int:
    """One check of fix 2; returns how many partitions it marked.
    ``records_found_at``: tp -> the last applied offset when a read found records past
    it; such a partition waits for faust to deliver them, and is not read again until
    the recovery has applied something more of it (a long recovery reads each partition
    no more often than it makes progress)."""
    # Imported here: stream.worker.offsets needs plumbing, which adds this watch to apps.
    from stream.worker.offsets import read_range

    if not app.in_recovery:
        records_found_at.clear()
        return 0
    recovery = app.tables.recovery
    quiet = {tp: span for tp, span in quiet_unfinished(recovery, time.monotonic(), QUIET_SECONDS).items()
             if records_found_at.get(tp) != span[0] - 1}
    if not quiet:
        return 0
    rests = await asyncio.gather(*(
        read_range(kafka, tp.topic, tp.partition, start, end, read_committed=True, first_only=True, poll_ms=REST_POLL_MS)
        for tp, (start, end) in quiet.items()
    ))
    marked = []
    for (tp, (start, _)), rest in zip(quiet.items(), rests):
        if rest:
            records_found_at[tp] = start - 1
        elif mark_read_to_end(recovery, tp, start - 1):
            marked.append(tp)
    if marked:
        log.info("%d changelog partitions hold only transaction markers past the recovered records: "
                 "read to their end", len(marked))
        if end_recovery_if_done(recovery):
            log.info("table recovery complete (the rest of its changelogs is transaction markers)")
    return len(marked)


def settle_recovery_tails(app: Any, kafka: KafkaSettings) -> None:
    """Fix 2: add the check to an exactly-once faust app. Not an ``app.timer``: faust starts
    those only once the first recovery is over, and a start's recovery needs it too."""
    started = [False]

    async def watch() -> None:
        records_found_at: dict[Any, int] = {}
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                await settle_marker_tails(app, kafka, records_found_at)
            except Exception:  # faust's own detection still ends the recovery, later
                log.exception("checking the changelog tails of a recovery failed")

    @app.on_partitions_assigned.connect
    async def start_watching_recovery_tails(sender: Any, *args: Any, **kwargs: Any) -> None:
        if not started[0]:
            started[0] = True
            app.add_future(watch())
