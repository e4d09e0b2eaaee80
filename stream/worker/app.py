"""Build the faust app: topics, tables and the two agents around the pure processor."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

import faust

from stream.clients import KafkaSettings
from stream.core.timeutil import rfc3339_ms
from stream.events import Rejection, encode_dead_letter
from stream.events.internal import NUDGE_KEY, TICK_KEY, encode_event, encode_nudge, encode_tick
from stream.ops.telemetry import WorkerTelemetry
from stream.ops.web import register_ops_endpoints
from stream.processing.intake import decode_input
from stream.processing.merge import EventTimeMerger, InputQuiet
from stream.processing.rules_change import RulesChangeError, RulesRecord
from stream.rules import Rules
from stream.worker.batch_work import process_records
from stream.worker.offsets import (
    TAILS_SECONDS, BatchGate, HoleReader, SourceProgress, SourceRecord, StalledTails, commit_from_progress,
    read_range, resume_offset, settle_tails, source_end_offsets, take_unhandled,
)
from stream.worker.plumbing import (
    RAW, ack_processed, current_event_of, delivered_or_crash, now_ms, state_table, stream_app,
)
from stream.worker.probe import WorkerProbe, watch_source_log_bounds
from stream.worker.record_batches import OutputBatch
from stream.worker.settings import WorkerSettings, web_token
from stream.worker.table_keys import WORKER_TABLES, partition_of
from stream.worker.tables import TableStore, stored_last_offset

log = logging.getLogger("stream.worker")


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

    customers, timers, clocks, history = (
        state_table(app, name, partitions, few_keys=name == "clocks", compaction=None if name == "clocks" else settings)
        for name in WORKER_TABLES
    )

    merger: EventTimeMerger[tuple[Any, Any, SourceRecord]] = EventTimeMerger()
    exactly_once = settings.processing_guarantee == "exactly_once"
    # What each agent has finished, per source partition; this alone decides the
    # commits (see stream/worker/offsets.py).
    intake_progress = SourceProgress()
    events_progress = SourceProgress(stored_last=lambda tp: stored_last_offset(clocks, tp.partition))
    # faust's consumers read committed records only (faust_patches.worker_consumer_settings),
    # and so do the agents' own reads of the broker.
    holes = HoleReader(kafka, read_committed=True)
    gate = BatchGate()
    input_names = set(topics.inputs())
    input_quiet = InputQuiet(settings.input_quiet_seconds, settings.input_idle_seconds)
    max_lead_ms = round(settings.max_event_lead_seconds * 1000)

    def input_partitions() -> list[Any]:
        return [tp for tp in app.consumer.assignment() if tp.topic in input_names]

    def exhausted(tp: Any) -> bool:
        return input_quiet.exhausted(tp, merger.last_offset.get(tp), time.monotonic())

    async def confirm_ends() -> None:
        """Ask the broker for the end of every input partition that has gone quiet, and
        whether anything is left to read before it."""
        now = time.monotonic()
        quiet = input_quiet.quiet(input_partitions(), now)
        if not quiet:
            return
        epoch = input_quiet.epoch
        for tp, end in (await source_end_offsets(app, quiet)).items():
            input_quiet.confirmed(tp, now, end)
            first_unread = input_quiet.first_unread(tp, merger.last_offset.get(tp))
            if first_unread is None:  # nothing taken since the start or the rebalance
                first_unread = await resume_offset(app, intake_progress, tp)
            if first_unread >= end:
                input_quiet.nothing_before(tp, end, epoch)
            elif input_quiet.worth_looking(tp, first_unread):
                found = await any_record_between(tp, first_unread, end)
                if found:
                    input_quiet.records_from(tp, first_unread, epoch)
                elif found is not None:
                    input_quiet.nothing_before(tp, end, epoch)

    async def any_record_between(tp: Any, start: int, end: int) -> bool | None:
        """Whether ``tp`` holds a record in ``[start, end)`` (None: the broker did not
        say); offsets with none are transaction markers (after every upstream
        transaction) or aborted records."""
        try:
            found = await read_range(kafka, tp.topic, tp.partition, start, end,
                                     read_committed=True, first_only=True, poll_ms=50)
        except Exception as error:  # the partition keeps holding the others back; asked again soon
            log.warning("%s[%d]: could not read offsets %d..%d: %s", tp.topic, tp.partition, start, end - 1, error)
            return None
        return bool(found)

    # The agent and the release timer both release; one at a time, or their sends could
    # interleave and put a customer's events out of order on segments-events.
    release_lock = asyncio.Lock()
    # From the moment a rebalance lets go of the held events until the next assignment,
    # the intake takes and releases nothing: the batch it is in the middle of would
    # otherwise forward its later events ahead of the earlier ones just let go of (they
    # are read again after the rebalance), out of time order on segments-events. Seen
    # once in CI: events of 1998-06-11..26 forwarded, then 05-20..06-08 after the
    # rebalance, and the customer agent took those for late events.
    intake_halted = [False]

    async def release_in_time_order() -> None:
        async with release_lock:
            if intake_halted[0]:
                return
            # One record batch per segments-events partition, in release order. Under
            # exactly-once each goes in the transaction of its destination partition (as
            # faust's topic.send would): one producer per destination keeps a customer's
            # events in order whatever input topics they came from.
            forwards: dict[int, tuple[OutputBatch, list[tuple[Any, SourceRecord]]]] = {}
            for decoded, tp, record in merger.release(input_partitions(), exhausted):
                partition = partition_of(decoded.customer_id, partitions)
                if partition not in forwards:
                    forwards[partition] = (OutputBatch(app, topics.events, partition), [])
                output, sources = forwards[partition]
                output.add(topics.events, decoded.customer_id.encode(), encode_event(decoded), partition=partition)
                sources.append((tp, record))
            for output, sources in forwards.values():
                # Finished only once delivered (a finished offset may be committed), but
                # without waiting for it here: the producer keeps the order.
                delivery = await output.send()
                delivery.add_done_callback(functools.partial(on_forwarded, sources))

    def on_forwarded(sources: list[tuple[Any, SourceRecord]], delivery: asyncio.Future) -> None:
        if delivered_or_crash(app, delivery, f"{topics.events}: forwarding {len(sources)} events"):
            for tp, record in sources:
                finished(tp, [record])

    @app.agent(inputs)
    async def intake(stream: faust.Stream) -> None:
        """Validate every input once; forward it keyed by customer in event-time order
        (see stream.processing.merge), or dead-letter it. Acks are manual: an event is
        acknowledged only once forwarded, so a crash re-reads what was still held."""
        async for batch in stream.noack().take_events(settings.batch_size, within=settings.batch_seconds):
            by_partition: dict[Any, list[Any]] = {}
            for event in batch:
                by_partition.setdefault(event.message.tp, []).append(event)
            for tp, events in by_partition.items():
                if not intake_halted[0]:
                    input_quiet.delivered(tp, time.monotonic())
                records = [] if intake_halted[0] else await take_unhandled(app, holes, intake_progress, tp, events)
                for record in records:
                    if intake_halted[0]:  # since a hole read or a dead letter's send
                        break
                    await take_input(tp, record)
                if intake_halted[0]:
                    # Not finished, so read again after the rebalance; acknowledged for
                    # the rebalance's wait (acknowledging one twice is a no-op).
                    ack_processed(app, events)
            await release_in_time_order()

    async def take_input(tp: Any, record: SourceRecord) -> None:
        published_at = record.timestamp_ms if record.timestamp_ms and record.timestamp_ms > 0 else None
        decoded = decode_input(record.value or b"", rules, published_at_ms=published_at, max_lead_ms=max_lead_ms)
        if isinstance(decoded, Rejection):
            telemetry.record_dead_letter(decoded.reason)
            log.warning("dead-lettered %s[%d]@%d: %s", tp.topic, tp.partition, record.offset, decoded.reason)
            delivery = await dead_letter_topic.send(
                key=record.key,
                value=encode_dead_letter(
                    record.value or b"", decoded,
                    topic=tp.topic, partition=tp.partition, offset=record.offset,
                    timestamp_ms=record.timestamp_ms, key=record.key, failed_at_ms=now_ms(), worker=settings.app_id,
                ),
            )
            await delivery
            merger.note_offset(tp, record.offset)
            finished(tp, [record])
        else:
            telemetry.record_event(decoded.type)
            previous_offset = merger.last_offset.get(tp)
            overtaken_by = merger.add(tp, record.offset, decoded.occurred_at, (decoded, tp, record), record.timestamp_ms or 0)
            if overtaken_by is not None:
                report_overtaken(tp, record.offset, previous_offset, decoded.occurred_at, overtaken_by)

    def report_overtaken(tp: Any, offset: int, previous_offset: int | None, occurred_at: int, newest_released: int) -> None:
        """Newer events went ahead while ``tp`` counted as read to its end: this one is
        processed as a late event. Expected for input that really arrives late; in a
        replay of a time-ordered file (where stream and batch must agree) it is not."""
        # The end the broker confirmed then says why: previous_offset + 1, this record was
        # not on the broker yet (it reached it behind newer ones on other partitions); more
        # would mean the exhaustion check let the merge go past a record it had not read.
        asked_at, end = input_quiet.confirmed_end(tp)
        log.info(
            "%s[%d]@%d overtaken: occurred %s, but events up to %s were released while the partition counted as "
            "read to its end (previous offset %s; broker end %d, confirmed %.3f s before this record came)",
            tp.topic, tp.partition, offset, rfc3339_ms(occurred_at), rfc3339_ms(newest_released), previous_offset,
            end, time.monotonic() - asked_at,
        )

    def finished(tp: Any, records: list[SourceRecord]) -> None:
        intake_progress.done(tp, [record.offset for record in records])
        ack_processed(app, [record.event for record in records if record.event is not None])

    @app.timer(settings.input_quiet_seconds)
    async def release_held_events() -> None:
        """Release what the last message left held once its partitions go quiet."""
        if len(merger):
            await confirm_ends()
            await release_in_time_order()

    stalled_tails = StalledTails()

    @app.timer(TAILS_SECONDS)
    async def watch_tails() -> None:
        assigned = app.consumer.assignment()
        for progress, names in ((intake_progress, input_names), (events_progress, {topics.events})):
            partitions = [tp for tp in assigned if tp.topic in names]
            await settle_tails(app, progress, stalled_tails, kafka, partitions, read_committed=True)

    @app.agent(events_topic, isolated_partitions=True)
    async def customer_agent(stream: faust.Stream) -> None:
        """One actor per partition: events and ticks through the processor, in batches."""
        async for batch in stream.take_events(settings.batch_size, within=settings.batch_seconds):
            with current_event_of(batch[-1]):
                async with gate.batch(batch[-1].message.partition):
                    await process_batch(batch)

    repaired_partitions: set[int] = set()
    # Partition -> whether its last batch left a change of rules to sweep; a partition
    # with no batch yet, or one still sweeping, is nudged.
    sweeping: dict[int, bool] = {}
    # Partitions whose last batch left due timers for the next (timers_per_batch).
    timers_behind: set[int] = set()
    # partition -> delivery of the last batch's changelog records
    changelog_in_flight: dict[int, asyncio.Future] = {}

    async def process_batch(batch: list[Any]) -> None:
        started = time.monotonic()
        tp = batch[-1].message.tp
        partition = tp.partition
        store = TableStore(customers, timers, clocks, partition, history)
        if repair_timers and partition not in repaired_partitions:
            fixed = store.repair_timers(rules)
            repaired_partitions.add(partition)
            log.warning("partition %d: timer index checked after an unclean stop, %d timers rewritten", partition, fixed)
        records = await take_unhandled(app, holes, events_progress, tp, batch)
        if not records:
            return
        offsets = [record.offset for record in records]
        try:
            output = process_records(
                [record.value or b"" for record in records], store, rules, now_ms(), settings.rules_sweep_customers,
                settings.timers_per_batch,
            )
        except RulesChangeError as error:
            rules_file = settings.rules_file or "the shipped rules"
            log.critical("partition %d: %s cannot replace the rules of the stored state: %s", partition, rules_file, error)
            await app.crash(RulesChangeError(f"{rules_file}: {error} (README: Changing the rules)"))
            return
        outputs = OutputBatch(app, topics.events, partition)
        sweeping_more = sweeping_on(partition, output.rules)
        timers_left = behind_on(partition, output.first_due_left)
        if sweeping_more or timers_left:
            # The next batch sweeps on, or fires the due timers left, at once, whether or
            # not events come.
            outputs.add(topics.events, NUDGE_KEY, encode_nudge(), partition=partition)
        for key, value in output.changes:
            outputs.add(topics.segment_changes, key, value)
        for key, value in output.profiles:
            outputs.add(topics.customer_profiles, key, value)
        # Outputs first, state second: a crash in between repeats outputs, never loses them.
        await (await outputs.send())
        # The previous batch's state reaches the changelogs before this one's: a crash
        # must never leave this batch's state (and stored offset) without the previous.
        previous = changelog_in_flight.get(partition)
        if previous is not None:
            await previous
        store.set_last_offset(offsets[-1])
        changelog = OutputBatch(app, topics.events, partition)
        changelog.add_changelog(store.flush())
        # The next batch goes on while this one's state is on its way (local RocksDB
        # already has it); the offsets are finished, and may commit, once it is durable.
        delivered = await changelog.send()
        changelog_in_flight[partition] = delivered
        delivered.add_done_callback(functools.partial(on_state_durable, tp, offsets, batch))
        telemetry.record_changes(output.change_records)
        elapsed = time.monotonic() - started
        telemetry.record_batch(elapsed, output.ticks)
        log.debug("batch p%d: %d records, %d changes, %.1f ms", partition, len(records), len(output.changes), elapsed * 1000)

    def sweeping_on(partition: int, record: RulesRecord | None) -> bool:
        """Whether a change of rules is still being swept into the partition (logged as
        its sweep starts and ends)."""
        now_sweeping = record is not None and not record.swept
        was_sweeping = sweeping.get(partition)
        sweeping[partition] = now_sweeping
        if now_sweeping and not was_sweeping:
            assert record is not None
            passing = "".join(
                f"; those not moved yet pass first through {step.version} from {rfc3339_ms(step.since)} on"
                for step in record.between
            )
            log.warning(
                "partition %d: rules %s replace %s from %s on; moving its stored customers to them%s",
                partition, record.version, record.previous, rfc3339_ms(record.since or 0), passing,
            )
        elif was_sweeping and not now_sweeping:
            log.warning("partition %d: every stored customer is under rules %s", partition, rules.version)
        return now_sweeping

    def behind_on(partition: int, first_due_left: int | None) -> bool:
        """Whether the partition has due timers left for its next batches (logged as it
        falls behind and catches up)."""
        was_behind = partition in timers_behind
        if first_due_left is not None and not was_behind:
            log.info("partition %d: more customers are due than a batch re-evaluates (timers_per_batch = %d); "
                     "the next batches go on from %s", partition, settings.timers_per_batch, rfc3339_ms(first_due_left))
            timers_behind.add(partition)
        elif first_due_left is None and was_behind:
            log.info("partition %d: every customer due by the clock re-evaluated", partition)
            timers_behind.discard(partition)
        return first_due_left is not None

    async def send_to_partition(partition: int, key: bytes, value: bytes) -> None:
        """A tick or a nudge: no consumed offset stands behind it, so it goes outside the
        transactions (OutputBatch), visible at once, whether events come or not."""
        output = OutputBatch(app, topics.events, partition, transactional=False)
        output.add(topics.events, key, value, partition=partition)
        await output.send()

    @app.timer(1.0)
    async def nudge_unsettled_partitions() -> None:
        """A partition runs a batch, and so finds out whether the rules changed, only
        when a record comes: under the event clock that could be the next event."""
        if app.rebalancing:
            return
        for tp in app.consumer.assignment():
            if tp.topic == topics.events and sweeping.get(tp.partition, True):
                try:
                    await send_to_partition(tp.partition, NUDGE_KEY, encode_nudge())
                except Exception as error:  # e.g. the producer not started yet: again in a second
                    log.info("partition %d: could not nudge it: %s", tp.partition, error)

    def on_state_durable(tp: Any, offsets: list[int], batch: list[Any], delivered: asyncio.Future) -> None:
        if delivered_or_crash(app, delivered, f"{tp.topic}[{tp.partition}] changelog"):
            events_progress.done(tp, offsets)
            ack_processed(app, batch)

    def progress_of(tp: Any) -> SourceProgress:
        return intake_progress if tp.topic in input_names else events_progress

    if settings.clock == "wall":

        @app.timer(settings.tick_interval_seconds)
        async def wall_clock_tick() -> None:
            """Tick every partition this worker owns, so time-caused changes fire live."""
            tick = encode_tick(now_ms())
            for tp in app.consumer.assignment():
                if tp.topic == topics.events:
                    await send_to_partition(tp.partition, TICK_KEY, tick)

    probe = WorkerProbe(
        app, rules, telemetry, events_topic=topics.events, source_topics=topics.inputs(), partitions=partitions,
        customers=customers, clocks=clocks, history=history,
        clock=settings.clock, processing_guarantee=settings.processing_guarantee,
    )

    @app.on_partitions_revoked.connect
    async def forget_progress(sender: Any, *args: Any, **kwargs: Any) -> None:
        # faust reads every partition again from its committed offset after a rebalance.
        intake_progress.reset()
        events_progress.reset()
        sweeping.clear()
        timers_behind.clear()
        let_go_of_held_events()

    def let_go_of_held_events() -> None:
        """Acknowledge what the merger holds without forwarding it: faust's rebalance
        waits for every delivered message to be acknowledged, and releasing them may need
        the consumer the rebalance is holding. They stay unfinished, so the commit stops
        before them and they are read again."""
        intake_halted[0] = True
        ack_processed(app, [record.event for _, _, record in merger.clear() if record.event is not None])
        input_quiet.forget()

    @app.on_partitions_assigned.connect
    async def consumer_started(sender: Any, *args: Any, **kwargs: Any) -> None:
        intake_halted[0] = False
        commit_from_progress(
            app, input_names | {topics.events}, lambda tp: progress_of(tp).next_to_commit(tp),
            gate if exactly_once else None, before_rebalance=let_go_of_held_events,
        )
        probe.started = True

    def merge_state(tp: Any) -> dict[str, Any]:
        if tp.topic not in input_names:
            return {}
        last_offset = merger.last_offset.get(tp)
        return {"merge": {"held_events": merger.held_in(tp),
                          **input_quiet.describe(tp, last_offset, time.monotonic())}}

    probe.progress_of = lambda tp: {**progress_of(tp).describe(tp), **merge_state(tp)}
    probe.held_events = lambda: len(merger)
    probe.log_bounds = watch_source_log_bounds(app, probe.source_topics, lambda: probe.started)

    register_ops_endpoints(
        app, probe, customers_table=customers, sample_seconds=settings.sample_seconds,
        token=web_token(settings),
    )
    return app
