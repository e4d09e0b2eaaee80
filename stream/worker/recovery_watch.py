"""A report for a table recovery that runs too long.

Three times in 66 pytest runs of tests/integration/test_worker_crash.py,
test_worker_rebalance.py and test_worker_bad_input.py together (2026-11-26 and 27), a
worker's recovery after a rebalance received no changelog record for minutes after
"Resuming flow...". When a recovery outlasts RECOVERY_REPORT_SECONDS, this logs faust's
flow and buffer state, aiokafka's own state of each partition and where every asyncio
task of the process waits, once per recovery. The report carries code locations,
partition names and offsets, no record contents (no customer data).

It named the cause the second time it caught one: aiokafka had read the changelog
partitions under recovery to their end (position = highwater) while faust had received
none of their records (read offset None), i.e. faust dropped a fetched batch before
delivery. stream/worker/fetch_fixes.py explains how and fixes it. The watch stays, for
whatever else may hold a recovery up, and after its report it sends the consumer back
for the partitions that got nothing (``stalled_partitions``): a recovery that lost
records that way takes RECOVERY_REPORT_SECONDS longer instead of never ending."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from typing import Any

from stream.worker.fetch_fixes import reread_recovering_changelogs

log = logging.getLogger("stream.worker.recovery_watch")

RECOVERY_REPORT_SECONDS = 60.0
CHECK_SECONDS = 5.0


class RecoveryWatch:
    """Pure bookkeeping: when the current recovery started, and whether it was reported."""

    def __init__(self, report_after: float = RECOVERY_REPORT_SECONDS) -> None:
        self.report_after = report_after
        self._since: float | None = None
        self._reported = False

    def due(self, in_recovery: bool, now: float) -> bool:
        """True once per recovery, when it has lasted ``report_after`` seconds."""
        if not in_recovery:
            self._since, self._reported = None, False
            return False
        if self._since is None:
            self._since = now
        if self._reported or now - self._since < self.report_after:
            return False
        self._reported = True
        return True


def await_chain(awaitable: Any) -> list[str]:
    """Where a coroutine waits, innermost last: each coroutine it awaits, through tasks
    it awaits too (a task's own stack shows only its outermost frame)."""
    places: list[str] = []
    seen: set[int] = set()
    while awaitable is not None and id(awaitable) not in seen:
        seen.add(id(awaitable))
        if isinstance(awaitable, asyncio.Task):
            awaitable = awaitable.get_coro()
            continue
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None) or getattr(awaitable, "ag_frame", None)
        if frame is not None:
            places.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        elif not asyncio.iscoroutine(awaitable):
            places.append(repr(awaitable)[:200])
            break
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None) or getattr(awaitable, "ag_await", None)
    return places


def task_stacks(loop: asyncio.AbstractEventLoop | None = None) -> str:
    """Where every task of ``loop`` (default: the running one) waits."""
    out = io.StringIO()
    for _ in range(3):  # another thread's loop may add tasks while they are listed
        try:
            tasks = list(asyncio.all_tasks(loop))
            break
        except RuntimeError:
            continue
    else:
        return "(tasks changed while listed)\n"
    for task in tasks:
        out.write(f"--- {task.get_name()}\n")
        for place in await_chain(task):
            out.write(f"    {place}\n")
    return out.getvalue()


def _name(tp: Any) -> str:
    return f"{tp.topic}[{tp.partition}]"


def names(tps: Any) -> list[str]:
    return sorted(_name(tp) for tp in tps or ())


def faust_state(app: Any) -> str:
    """faust's consumer and buffer state: what decides whether messages flow."""
    consumer = app.consumer

    lines = [
        f"flow_active={consumer.flow_active} suspend_flow={consumer.suspend_flow.is_set()} "
        f"can_resume_flow={consumer.can_resume_flow.is_set()} flow_control_active={app.flow_control.is_active()}",
        f"active={names(consumer._active_partitions)}",
        f"paused={names(consumer._paused_partitions)}",
        f"buffered={names(consumer._buffered_partitions)}",
        f"read_offsets={ {_name(tp): offset for tp, offset in consumer._read_offset.items()} }",
        f"changelog_queue={app.tables.changelog_queue.qsize()}",
    ]
    for tp, channels in app.topics._tp_index.items():
        sizes = [f"{channel.queue.qsize()}/{channel.queue.maxsize}" for channel in channels]
        lines.append(f"buffer {_name(tp)}: {sizes}")
    lines.extend(aiokafka_state(app))
    return "\n".join(lines)


def aiokafka_state(app: Any) -> list[str]:
    """What faust's aiokafka consumer itself holds per partition: whether aiokafka, not
    only faust, has it paused, its position and status, and fetched records waiting. (In
    the one recovery caught hanging, faust's own state said the changelog partitions were
    active and its fetch was waiting on aiokafka: this says why aiokafka fetched nothing.)
    Read from the main thread while the consumer thread runs: a snapshot, maybe torn."""
    try:
        aiokafka_consumer = app.consumer._thread._consumer
        assignment = aiokafka_consumer._subscription.subscription.assignment
    except Exception as exc:  # no consumer yet, or another faust/aiokafka layout
        return [f"aiokafka state unavailable: {exc!r}"]
    fetched = getattr(getattr(aiokafka_consumer, "_fetcher", None), "_records", None)
    waiting = "fetcher not started" if fetched is None else names(list(fetched))
    lines = [f"aiokafka fetched, undelivered: {waiting}"]
    for tp in sorted(assignment.tps, key=lambda tp: (tp.topic, tp.partition)):
        state = assignment.state_value(tp)
        lines.append(
            f"aiokafka {_name(tp)}: paused={state.paused} status={getattr(state, '_status', '?')} "
            f"position={getattr(state, '_position', '?')} highwater={state.highwater}"
        )
    return lines


def stalled_partitions(recovery: Any, now: float, quiet_seconds: float) -> list[Any]:
    """The active changelog partitions faust's ``recovery`` still needs records of and
    has received none of for ``quiet_seconds`` (or at all)."""
    received_at = recovery._active_events_received_at  # tp -> monotonic time of its last record
    stalled = []
    for tp, remaining in recovery.active_remaining().items():
        last = received_at.get(tp)
        if remaining > 0 and (last is None or now - last >= quiet_seconds):
            stalled.append(tp)
    return stalled


def watch_recovery(app: Any) -> None:
    """Add the report to a faust app, and, with it, send the consumer back for the
    records of partitions the recovery waits on in vain: whatever lost them (the cause
    known so far is fixed in stream/worker/fetch_fixes.py), reading them again from
    where the recovery stands costs a re-read, and a recovery that never ends costs the
    worker."""
    watch = RecoveryWatch(RECOVERY_REPORT_SECONDS)

    @app.timer(CHECK_SECONDS)
    async def report_long_recovery() -> None:
        if not watch.due(app.in_recovery, time.monotonic()):
            return
        try:  # a diagnostic must never take the worker down
            thread = getattr(app.consumer, "_thread", None)
            thread_loop = getattr(thread, "thread_loop", None)
            log.warning(
                "table recovery running for over %.0f s; faust's state:\n%s\nwhere every task waits:\n%s"
                "\nin the consumer thread:\n%s",
                watch.report_after, faust_state(app), task_stacks(),
                task_stacks(thread_loop) if thread_loop is not None else "(none)",
            )
        except Exception:
            log.exception("table recovery running for over %.0f s; its report failed", watch.report_after)
        stalled = stalled_partitions(app.tables.recovery, time.monotonic(), watch.report_after)
        if stalled:
            log.warning("%d changelog partitions under recovery got no record for %.0f s: reading them again",
                        len(stalled), watch.report_after)
            await reread_recovering_changelogs(app, stalled)
