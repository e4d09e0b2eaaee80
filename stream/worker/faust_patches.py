"""Changes to faust (its consumer, and its table manager's start) that faust has no
setting for, applied once per process (``stream_app`` does it): a shorter fetch wait and
committed records only, message delivery without four tasks per message, the fetch
fixes of stream/worker/fetch_fixes.py, the end offsets of
stream/worker/exactly_once_recovery.py, no idle second at start, and aiokafka's fetcher
remembering the offsets it steps over (stream/worker/skipped_offsets.py); and, per app,
fetching again the messages faust throws out of its stream buffers after a rebalance
(``reread_cleared_messages``).

``direct_delivery`` replaces faust's message loop with an edited copy; a unit test
(tests/unit/worker/test_faust_patches.py) pins the source of the faust version it was
written against, so an upgrade that changes it fails the suite instead of silently
running the old copy. tests/integration/test_faust_patches.py runs both in a real faust
process.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, cast

from stream.worker.exactly_once_recovery import broker_highwaters, without_recovery_guess
from stream.worker.fetch_fixes import apply_fetch_fixes
from stream.worker.skipped_offsets import note_skipped_offsets

log = logging.getLogger("stream.worker.faust_patches")

# How long the broker may hold a fetch that found no new records. faust fixes it at
# 1.5 s, and aiokafka keeps one fetch in flight per broker, covering only the partitions
# with nothing buffered: records arriving meanwhile on the others wait for it to return.
# A short wait bounds that delay; an idle worker then sends a few empty fetches a second.
FETCH_MAX_WAIT_MS = 100


def apply_faust_patches() -> None:
    worker_consumer_settings()
    direct_delivery()
    apply_fetch_fixes()
    broker_highwaters()
    without_recovery_guess()
    tables_without_start_delay()
    note_skipped_offsets()


def tables_without_start_delay() -> None:
    """Skip the second faust's table manager sleeps at start before it closes the list of
    tables. The sleep lets an app declare tables late (while its agents start); the apps
    here declare every table before they start, and a late one would make faust raise
    ("Too late to add tables"), so the second was only start-up time, paid by every start
    and restart of a worker or playbooks process."""
    from faust.tables.manager import TableManager

    if getattr(TableManager.on_start, "no_start_delay", False):
        return

    async def on_start(self: Any) -> None:
        # faust's on_start without its ``await self.sleep(1.0)``
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()

    on_start.no_start_delay = True  # type: ignore[attr-defined]
    TableManager.on_start = on_start


def worker_consumer_settings() -> None:
    """Make faust's worker consumers use FETCH_MAX_WAIT_MS, and read committed records
    only whatever the app's guarantee.

    faust reads uncommitted unless the app runs transactions itself, but the topics it
    reads may be written in transactions by others: the inputs by a Kafka Streams or
    Flink job with exactly-once, `segment-changes` (what the playbooks app reads) by an
    exactly-once worker. Read uncommitted, an aborted transaction's records would be
    processed as events, or turned into actions. Topics nobody writes in transactions
    read the same either way."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    create = AIOKafkaConsumerThread._create_worker_consumer
    if getattr(create, "worker_consumer_settings", False):
        return

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = create(self, transport)
        # Both read when the consumer starts (its fetcher is made then).
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        consumer._isolation_level = "read_committed"
        return consumer

    create_worker_consumer.worker_consumer_settings = True  # type: ignore[attr-defined]
    AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer


def direct_delivery() -> None:
    """Hand each fetched message to its streams without four tasks per message.

    faust's consumer delivers every message as ``wait_first(callback(message),
    suspend_flow.wait())``: four tasks (the delivery, and waits on flow suspension, stop
    and crash), an ``asyncio.wait`` and three cancellations, so that a rebalance can
    abandon a delivery stuck on a full stream buffer. Most deliveries never wait at all.
    This runs the delivery's first step directly and falls back to faust's
    ``wait_first`` only for one that has to wait, or while the flow is suspended: the
    same behaviour, at a fraction of the cost (BENCHMARKS.md).

    Delivered that fast, messages fill a stream's buffer faster than the stream empties
    it, and faust answers a full buffer by taking the partition out of the fetcher
    until the buffer has drained: with every partition out, the consumer sleeps a whole
    second before fetching again. So a delivery to a buffer about to fill first waits
    (interrupted, like faust's, by a flow suspension) until it is back to its low mark:
    the partition never leaves the fetcher, and the already fetched messages keep coming.

    The loop is faust 0.15.3's ``Consumer._drain_messages`` with only that changed.
    """
    from faust.transport.consumer import CONSUMER_FETCHING, Consumer

    if getattr(Consumer._drain_messages, "direct_delivery", False):
        return

    async def _drain_messages(self: Any, fetcher: Any) -> None:  # pragma: no cover - faust's loop
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set

        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        flag_consumer_fetching = CONSUMER_FETCHING
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        flow_suspended = self.suspend_flow.is_set
        buffers_of = buffers_for(self.app)

        def backed_up(tp: Any) -> bool:
            return any(buffer.qsize() >= buffer.pressure_high_size - 1 for buffer in buffers_of(tp))

        async def drained(tp: Any) -> None:
            while any(buffer.qsize() > buffer.pressure_drop_size for buffer in buffers_of(tp)):
                await asyncio.sleep(DRAIN_POLL_SECONDS)

        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep

        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(flag_consumer_fetching)
                ait = getmany(timeout=1.0)

                # Sleeping because sometimes getmany is called in a loop
                # never releasing to the event loop
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0

                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            # We have a gap in income messages
                            if gap > 1 and r_offset:
                                acks_enabled = acks_enabled_for(message.topic)
                                if acks_enabled:
                                    await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None:
                                if self._n_acked >= commit_every:
                                    self._n_acked = 0
                                    await self.commit()
                            # The changes: see direct_delivery.
                            if backed_up(tp):
                                await self.wait_first(drained(tp), self.suspend_flow.wait())
                            delivery = callback(message)
                            if flow_suspended():
                                await self.wait_first(delivery, self.suspend_flow.wait())
                            else:
                                waiting_on = step(delivery)
                                if waiting_on is not _DONE:
                                    await self.wait_first(rest_of(delivery, waiting_on), self.suspend_flow.wait())
                            set_read_offset(tp, offset)
                        else:
                            self.log.dev(
                                "DROPPED MESSAGE ROFF %r: k=%r v=%r",
                                offset,
                                message.key,
                                message.value,
                            )
                    unset_flag(flag_consumer_fetching)

        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                # we're already stopping so ignore
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                # we're already stopping so ignore
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(flag_consumer_fetching)

    _drain_messages.direct_delivery = True  # type: ignore[attr-defined]
    Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]


def reread_cleared_messages(app: Any) -> None:
    """Send ``app``'s consumer back for the messages faust throws out of its stream buffers.

    faust empties every stream buffer whenever it resumes its flow, and the last time is
    at the end of each rebalance's recovery, after its seek to the committed offsets.
    Messages it delivered into the buffers in between are gone, its read offsets are
    already past them, and it drops the copies it fetches again: the agents never get
    them (a restarted worker lost records this way in about one restart of three,
    tests/integration/test_lag.py; faust-streaming PR #217 fixed the same race in another
    of its recovery paths, where the buffers were emptied before the seek). So before the
    buffers are emptied, note the first buffered offset of each source partition, and
    seek there afterwards. (Only while the flow is on: buffers emptied while it is
    stopped, as at a partition revocation, come before the rebalance's own seek, which
    covers them.)"""
    flow_control = app.flow_control
    empty_buffers = flow_control.clear
    if getattr(empty_buffers, "rereads", False):
        return

    def clear() -> None:
        consumer = app._consumer  # not app.consumer: that would create one
        if consumer is None or not consumer.flow_active:
            empty_buffers()
            return
        first_offsets: dict[Any, int] = {}
        for queue in list(flow_control._queues):
            for item in list(queue._queue):
                message = getattr(item, "message", None)
                if message is not None and message.offset < first_offsets.get(message.tp, message.offset + 1):
                    first_offsets[message.tp] = message.offset
        empty_buffers()
        changelogs = app.tables.changelog_topics
        sources = {tp: offset for tp, offset in first_offsets.items() if tp.topic not in changelogs}
        if sources:
            log.info("fetching %d emptied stream buffers' messages again", len(sources))
            asyncio.ensure_future(seek_back(app, sources))

    clear.rereads = True  # type: ignore[attr-defined]
    flow_control.clear = clear


async def seek_back(app: Any, offsets: dict[Any, int]) -> None:
    """Seek ``app``'s consumer to ``offsets`` (faust's read offsets too, so it delivers
    the records again), for the partitions it still owns. A rebalance may take them
    meanwhile: its own seek then covers them."""
    assigned = app.consumer.assignment()
    owned = {tp: offset for tp, offset in offsets.items() if tp in assigned}
    if not owned:
        return
    try:
        await app.consumer.seek_wait(owned)
    except Exception as exc:
        log.info("could not send the consumer back to %d partitions' offsets: %r", len(owned), exc)


# How often a delivery held back by a full stream buffer looks again.
DRAIN_POLL_SECONDS = 0.001


def buffers_for(app: Any) -> Callable[[Any], list[Any]]:
    """The stream buffers (channel queues) a partition's messages are delivered to."""
    channels_of = app.topics._tp_index  # faust's Conductor: TP -> the channels reading it

    def buffers_of(tp: Any) -> list[Any]:
        return [channel.queue for channel in channels_of.get(tp, ())]

    return buffers_of


_DONE = object()


def step(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coroutine`` up to its first wait: ``_DONE`` if it finished, else what it
    waits on (a future, or None for a bare yield such as ``asyncio.sleep(0)``). An
    exception it raises propagates."""
    try:
        return coroutine.send(None)
    except StopIteration:
        return _DONE


async def rest_of(coroutine: Coroutine[Any, Any, Any], waiting_on: Any) -> Any:
    """Run the rest of a coroutine that ``step`` started, as a task would: resume it each
    time what it waits on is done. Cancelling this raises the cancellation inside the
    coroutine, where it waits, and cancels what it waited on."""
    while True:
        resume: Callable[[], Any]
        try:
            if waiting_on is None:
                await asyncio.sleep(0)  # a bare yield: resume on the loop's next pass
            else:
                waiting_on._asyncio_future_blocking = False  # taken over, as Task.__step does
                await asyncio.wait([cast(asyncio.Future, waiting_on)])
        except asyncio.CancelledError as cancelled:
            if waiting_on is not None and not waiting_on.done():
                waiting_on.cancel()
            resume = functools.partial(coroutine.throw, cancelled)
        else:
            resume = functools.partial(coroutine.send, None)
        try:
            waiting_on = resume()
        except StopIteration as stop:
            return stop.value
