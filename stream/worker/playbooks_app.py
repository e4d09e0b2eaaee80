"""Build the playbooks app: segment changes in, action records out (``segments playbooks``).

A faust app of its own (own consumer group, own state), beside the worker: it reads the
segment-changes topic, asks the pure core (``stream.playbooks.decide``) what each change
triggers given the customer's policy state (caps, cooldowns), publishes every action
record to ``playbook-actions`` keyed by customer, and keeps the policy states in a
RocksDB table with a Kafka changelog.

Same delivery discipline as the worker: a batch's action records are acknowledged by
the broker before its policy states are written, and those before its offsets commit,
so a crash repeats a decision (the state remembers decided change ids, so a repeat
emits nothing) instead of losing one; under exactly-once all of it is one transaction.

An erased customer (a record of kind ``erasure``): the core's erasure notice goes out
with the batch's actions, and the customer's policy state is deleted, a tombstone on
the table's changelog, so neither a restart nor a recovery brings it back. The log names
offsets, never the customer.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import faust
import orjson

from stream.clients import KafkaSettings
from stream.clients.topics import partitions_of
from stream.core.json_bytes import dumps_compact
from stream.core.timeutil import rfc3339_ms
from stream.ops.metrics import render_playbook_metrics
from stream.ops.snapshot import PlaybooksSnapshot
from stream.ops.telemetry import PlaybookTelemetry
from stream.ops.web import register_probes_and_metrics
from stream.playbooks import Playbook, PolicyState, UnknownKind, caused_by_erasure, decide, is_erasure
from stream.worker.offsets import (
    TAILS_SECONDS, BatchGate, HoleReader, SourceProgress, StalledTails, commit_from_progress, settle_tails,
    take_unhandled,
)
from stream.worker.plumbing import (
    RAW, LocalWrites, ack_processed, current_event_of, now_ms, read_local, state_table, stream_app,
)
from stream.worker.probe import app_ready, group_offsets, watch_source_log_bounds
from stream.worker.record_batches import OutputBatch
from stream.worker.settings import PlaybooksSettings, web_token
from stream.worker.suppression_feed import SuppressionFeed
from stream.worker.table_keys import offset_key
from stream.worker.tables import stored_last_offset

log = logging.getLogger("stream.playbooks")


def build_playbooks_app(
    settings: PlaybooksSettings,
    kafka: KafkaSettings,
    playbook: Playbook,
    *,
    partitions: int,
    suppressed: frozenset[str] = frozenset(),
) -> faust.App:
    """``partitions``: of the segment-changes topic (the policy table is co-partitioned
    with it). ``suppressed``: the suppression file's customer ids; the suppression topic
    (``topics.suppression``), when set, is followed on top."""
    app = stream_app(settings, kafka, partitions)
    telemetry = PlaybookTelemetry()
    changes_topic_name = settings.topics.segment_changes
    assert changes_topic_name is not None
    changes_topic = app.topic(changes_topic_name, **RAW)
    policies = state_table(app, "policies", partitions, compaction=settings)
    # partition -> the last segment-changes offset decided (see stream/worker/offsets.py)
    progress = state_table(app, "progress", partitions, few_keys=True)
    exactly_once = settings.processing_guarantee == "exactly_once"
    # Decided before the last rebalance: the offset stored with the policy states.
    changes_progress = SourceProgress(stored_last=lambda tp: stored_last_offset(progress, tp.partition))
    # The worker may write segment-changes in transactions whatever this app's guarantee:
    # faust's consumer reads committed records only (faust_patches.worker_consumer_settings),
    # and so do the agent's own reads of the broker.
    holes = HoleReader(kafka, read_committed=True)
    gate = BatchGate()
    actions_topic = settings.topics.actions
    feed: SuppressionFeed | None = None
    if settings.topics.suppression:
        feed = SuppressionFeed(kafka, settings.topics.suppression, partitions_of(kafka, settings.topics.suppression), suppressed)
        app.task(feed.follow)
        is_suppressed: Callable[[str], bool] = feed.__contains__
    else:
        is_suppressed = suppressed.__contains__

    stalled_tails = StalledTails()

    @app.timer(TAILS_SECONDS)
    async def watch_tails() -> None:
        partitions = [tp for tp in app.consumer.assignment() if tp.topic == changes_topic_name]
        await settle_tails(app, changes_progress, stalled_tails, kafka, partitions, read_committed=True)

    @app.agent(changes_topic, isolated_partitions=True)
    async def playbook_agent(stream: faust.Stream) -> None:
        async for batch in stream.take_events(settings.batch_size, within=settings.batch_seconds):
            with current_event_of(batch[-1]):
                async with gate.batch(batch[-1].message.partition):
                    await process_batch(batch)

    async def process_batch(batch: list[Any]) -> None:
        if feed is not None:
            await feed.loaded.wait()
        tp = batch[-1].message.tp
        partition = tp.partition
        now = now_ms()
        states: dict[bytes, PolicyState | None] = {}
        erased: set[bytes] = set()  # customers whose stored state goes (unless a later change set one)
        actions = OutputBatch(app, changes_topic_name, partition)
        records = await take_unhandled(app, holes, changes_progress, tp, batch)
        if not records:
            return
        offsets = [record.offset for record in records]
        for record in records:
            offset = record.offset
            try:
                change = orjson.loads(record.value or b"")
                key = change["customer_id"].encode()
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                telemetry.changes_by_outcome["malformed"] += 1
                log.warning("not a segment-change record: %s[%d]@%d", changes_topic_name, partition, offset)
                continue
            if key not in states:
                raw = read_local(policies, partition, key)
                states[key] = PolicyState.from_bytes(raw) if raw is not None else None
            try:
                decided, state = decide(change, playbook, states[key], now_ms=now, suppressed=is_suppressed(change["customer_id"]))
            except UnknownKind as error:
                # A later worker's kind: not this version's to act on, and no reason to stop.
                telemetry.changes_by_outcome["unknown_kind"] += 1
                log.warning("%s[%d]@%d: %s: ignored", changes_topic_name, partition, offset, error)
                continue
            except ValueError as error:
                telemetry.changes_by_outcome["malformed"] += 1
                log.warning("%s[%d]@%d: %s", changes_topic_name, partition, offset, error)
                continue
            duplicate = state is states[key] and not decided
            if is_erasure(change):
                telemetry.changes_by_outcome["erasure"] += 1
                log.info("%s[%d]@%d: a customer erased: policy state deleted, erasure notice published",
                         changes_topic_name, partition, offset)
                erased.add(key)
                states[key] = None  # the customer's next change starts from nothing
            else:
                outcome = "duplicate" if duplicate else "erasure" if caused_by_erasure(change) else "decided"
                telemetry.changes_by_outcome[outcome] += 1
                states[key] = state
                telemetry.record_actions(decided)
            emitted_at = rfc3339_ms(now_ms())
            for action in decided:
                action["emitted_at"] = emitted_at
                actions.add(actions_topic, key, dumps_compact(action))
        # Actions first, state second: a crash in between repeats a decision, never loses one.
        await (await actions.send())
        writes = LocalWrites(partition)
        for key, state in states.items():
            if state is not None:
                writes.put(policies, key, state.to_bytes())
            elif key in erased:
                writes.put(policies, key, None)  # a tombstone on the changelog too
        writes.put(progress, offset_key(partition), str(offsets[-1]).encode())
        changelog = OutputBatch(app, changes_topic_name, partition)
        changelog.add_changelog(writes.apply())
        await (await changelog.send())
        changes_progress.done(tp, offsets)
        ack_processed(app, batch)

    started = {"assigned": False}

    @app.on_partitions_revoked.connect
    async def forget_progress(sender: Any, *args: Any, **kwargs: Any) -> None:
        changes_progress.reset()

    @app.on_partitions_assigned.connect
    async def consumer_started(sender: Any, *args: Any, **kwargs: Any) -> None:
        commit_from_progress(app, {changes_topic_name}, changes_progress.next_to_commit, gate if exactly_once else None)
        started["assigned"] = True

    log_bounds = watch_source_log_bounds(app, {changes_topic_name}, lambda: started["assigned"])

    def snapshot() -> PlaybooksSnapshot:
        offsets = group_offsets(app, {changes_topic_name}, log_bounds) if started["assigned"] else []
        return PlaybooksSnapshot(app.conf.id, ready(), offsets, telemetry)

    def ready() -> bool:
        return started["assigned"] and app_ready(app, changes_topic_name)

    register_probes_and_metrics(app, ready=ready, metrics=lambda: render_playbook_metrics(snapshot()), token=web_token(settings))
    app.playbook_telemetry = telemetry  # type: ignore[attr-defined]
    return app
