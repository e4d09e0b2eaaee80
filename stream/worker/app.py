"""Build the faust app: topics, tables and the two agents around the pure processor."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
import orjson

from stream.clients import KafkaSettings
from stream.core.profile import profile
from stream.core.state import CustomerState
from stream.core.timers import next_due
from stream.core.timeutil import rfc3339_ms
from stream.events import Rejection, encode_dead_letter
from stream.events.internal import TICK_KEY, decode_record, encode_event, encode_tick
from stream.ops.telemetry import WorkerTelemetry
from stream.ops.web import register_ops_endpoints
from stream.processing import PartitionProcessor, StepResult
from stream.processing.intake import decode_input
from stream.processing.merge import EventTimeMerger
from stream.rules import Rules
from stream.worker.plumbing import RAW, GapGuard, ack_processed, current_event_of, now_ms, output_sender, stream_app
from stream.worker.probe import WorkerProbe
from stream.worker.settings import WorkerSettings, web_token
from stream.worker.tables import TableStore

log = logging.getLogger("stream.worker")


def profile_record(state: CustomerState, rules: Rules) -> bytes:
    return orjson.dumps(profile(state, state.evaluated_at, rules))


def build_app(settings: WorkerSettings, kafka: KafkaSettings, rules: Rules, *, repair_timers: bool = False) -> faust.App:
    """``repair_timers``: the last run stopped uncleanly; re-derive each partition's timer
    index from its customer states before its first batch (see TableStore.repair_timers)."""
    app = stream_app(settings, kafka, settings.partitions)
    telemetry = WorkerTelemetry()
    app.segments_telemetry = telemetry  # type: ignore[attr-defined]
    topics = settings.topics
    partitions = settings.partitions

    inputs = app.topic(*topics.inputs(), **RAW)
    events_topic = app.topic(topics.events, partitions=partitions, internal=True, **RAW)
    dead_letter_topic = app.topic(topics.dead_letter, partitions=partitions, internal=True, **RAW)

    table_types = {"key_type": bytes, "value_type": bytes}
    customers = app.Table("customers", partitions=partitions, **table_types)
    timers = app.Table("timers", partitions=partitions, **table_types)
    clocks = app.Table("clocks", partitions=partitions, **table_types)
    history = app.Table("history", partitions=partitions, **table_types)

    merger: EventTimeMerger[tuple[Any, Any]] = EventTimeMerger()
    input_names = set(topics.inputs())
    quiet_since: dict[Any, float] = {}

    def input_partitions() -> list[Any]:
        assigned = [tp for tp in app.consumer.assignment() if tp.topic in input_names]
        for tp in assigned:
            quiet_since.setdefault(tp, time.monotonic())
        return assigned

    confirmed_end: dict[Any, tuple[float, int]] = {}  # tp -> (when asked, end offset)

    def exhausted(tp: Any) -> bool:
        """Nothing older can come from ``tp`` for now: the broker confirmed, after the
        partition's last message arrived, that we have read it to its end. (The end the
        fetcher last saw can lag a busy producer by seconds, which would let newer events
        overtake.) A partition never read from counts once its end is confirmed empty or
        it stayed silent for input_idle_seconds (everything consumed by an earlier run)."""
        quiet_from = quiet_since.get(tp, 0.0)
        asked_at, end = confirmed_end.get(tp, (0.0, -1))
        last = merger.last_offset.get(tp)
        if last is None:
            return (asked_at > quiet_from and end == 0) or time.monotonic() - quiet_from >= settings.input_idle_seconds
        return asked_at > quiet_from and last + 1 >= end

    async def confirm_ends() -> None:
        """Ask the broker for the end of every input partition that has gone quiet."""
        now = time.monotonic()
        quiet = [tp for tp in input_partitions() if now - quiet_since.get(tp, 0.0) >= settings.input_quiet_seconds]
        if not quiet:
            return
        # faust exposes no fresh end-offset query for source partitions; ask its
        # consumer thread's aiokafka consumer directly.
        thread = app.consumer._thread
        ends = await thread.call_thread(thread._ensure_consumer().end_offsets, quiet)
        for tp, end in ends.items():
            confirmed_end[tp] = (now, end)

    # The agent and the release timer both release; one at a time, or their sends could
    # interleave and put a customer's events out of order on segments-events.
    release_lock = asyncio.Lock()

    async def release_in_time_order() -> None:
        async with release_lock:
            released = merger.release(input_partitions(), exhausted)
            deliveries = [
                await events_topic.send(key=decoded.customer_id.encode(), value=encode_event(decoded))
                for decoded, _ in released
            ]
            # Acknowledge only what is delivered: an acknowledged offset may be committed.
            if deliveries:
                await asyncio.gather(*deliveries)
            ack_processed(app, [event for _, event in released])

    @app.agent(inputs)
    async def intake(stream: faust.Stream) -> None:
        """Validate every input once; forward it keyed by customer in event-time order
        (see stream.processing.merge), or dead-letter it. Acks are manual: an event is
        acknowledged only once forwarded, so a crash re-reads what was still held."""
        async for event in stream.noack().events():
            message = event.message
            tp = message.tp
            quiet_since[tp] = time.monotonic()
            decoded = decode_input(event.value, rules)
            if isinstance(decoded, Rejection):
                telemetry.record_dead_letter(decoded.reason)
                log.warning(
                    "dead-lettered %s[%d]@%d: %s", message.topic, message.partition, message.offset, decoded.reason
                )
                delivery = await dead_letter_topic.send(
                    key=message.key,
                    value=encode_dead_letter(
                        event.value, decoded,
                        topic=message.topic, partition=message.partition, offset=message.offset,
                        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
                        key=message.key, failed_at_ms=now_ms(), worker=settings.app_id,
                    ),
                )
                await delivery
                merger.note_offset(tp, message.offset)
                ack_processed(app, [event])
            else:
                telemetry.record_event(decoded.type)
                arrived_at = int(message.timestamp * 1000) if message.timestamp else 0
                merger.add(tp, message.offset, decoded.occurred_at, (decoded, event), arrived_at)
            await release_in_time_order()

    @app.timer(settings.input_quiet_seconds)
    async def release_held_events() -> None:
        """Release what the last message left held once its partitions go quiet."""
        if len(merger):
            await confirm_ends()
            await release_in_time_order()

    @app.agent(events_topic, isolated_partitions=True)
    async def customer_agent(stream: faust.Stream) -> None:
        """One actor per partition: events and ticks through the processor, in batches."""
        async for batch in stream.take_events(settings.batch_size, within=settings.batch_seconds):
            with current_event_of(batch[-1]):
                await process_batch(batch)

    repaired_partitions: set[int] = set()

    send_output = output_sender(app, topics.events)
    gap_guard = GapGuard(app, kafka, topics.events)

    async def process_batch(batch: list[Any]) -> None:
        started = time.monotonic()
        partition = batch[-1].message.partition
        store = TableStore(customers, timers, clocks, partition, history)
        if repair_timers and partition not in repaired_partitions:
            fixed = store.repair_timers(lambda state: next_due(state, rules))
            repaired_partitions.add(partition)
            log.warning("partition %d: timer index checked after an unclean stop, %d timers rewritten", partition, fixed)
        processor = PartitionProcessor(rules, store)
        result = StepResult()
        ticks = 0
        values = [event.value for event in batch]
        first = batch[0].message.offset
        missing = await gap_guard.missing_before(partition, store.last_offset(), first)
        if missing:
            log.warning("partition %d: offsets %d..%d never reached the agent; read and processed them directly",
                        partition, missing[0][0], first - 1)
            values = [value for _, _, value in missing] + values
        for value in values:
            record = decode_record(value)
            if isinstance(record, int):
                ticks += 1
                result.extend(processor.on_tick(record))
            else:
                result.extend(processor.on_event(record))
        emitted_at = rfc3339_ms(now_ms())
        records = []
        pending = []
        for change in result.changes:
            record = change.to_json_dict()
            record["emitted_at"] = emitted_at
            records.append(record)
            pending.append(await send_output(partition, topics.segment_changes, change.customer_id.encode(), orjson.dumps(record)))
            store.add_history(change.customer_id, [record])
        for customer_id, state in result.touched.items():
            pending.append(await send_output(partition, topics.customer_profiles, customer_id.encode(), profile_record(state, rules)))
        # Outputs first, state second: a crash in between repeats outputs, never loses them.
        if pending:
            await asyncio.gather(*pending)
        store.set_last_offset(batch[-1].message.offset)
        # The batch's events are acknowledged when this returns: their state must be
        # durable in the changelogs by then.
        changelog_sends = [
            await send_output(partition, topic, key, value, partition=partition)
            for topic, key, value in store.flush()
        ]
        if changelog_sends:
            await asyncio.gather(*changelog_sends)
        ack_processed(app, batch)
        telemetry.record_changes(records)
        elapsed = time.monotonic() - started
        telemetry.record_batch(elapsed, ticks)
        log.debug("batch p%d: %d records, %d changes, %.1f ms", partition, len(batch), len(result.changes), elapsed * 1000)

    if settings.clock == "wall":

        @app.timer(settings.tick_interval_seconds)
        async def wall_clock_tick() -> None:
            """Tick every partition this worker owns, so time-caused changes fire live."""
            tick = encode_tick(now_ms())
            for tp in app.consumer.assignment():
                if tp.topic == topics.events:
                    await events_topic.send(key=TICK_KEY, value=tick, partition=tp.partition)

    probe = WorkerProbe(
        app, rules, telemetry, events_topic=topics.events, source_topics=topics.inputs(), partitions=partitions,
        customers=customers, clocks=clocks, history=history,
    )

    @app.on_partitions_assigned.connect
    async def consumer_started(sender: Any, *args: Any, **kwargs: Any) -> None:
        probe.started = True

    register_ops_endpoints(
        app, probe, customers_table=customers, sample_seconds=settings.sample_seconds,
        token=web_token(settings),
    )
    return app
