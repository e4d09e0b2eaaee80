"""The sender's loop: Kafka in, ledger, SMTP out. The imperative shell around the pure parts.

One thread does everything in order, which is what makes the ledger argument simple:

1. poll ``playbook-actions`` (group consumer, ``read_committed``); write every email
   action as ``pending`` and unconfirmed in one SQLite transaction, then apply the
   erasure notices (cancel and redact the customer's actions, ``Ledger.erase``); only
   then commit the offsets, and confirm the rows. The group has one active sender
   (``assignor.py``): a standby reads and sends nothing;
2. poll ``customer-profiles`` (all partitions, no group: every sender instance needs
   every customer's profile); store the newest profile per customer with the offsets;
3. send the due actions: timing, re-check, contact, render, SMTP, each outcome written
   to the ledger before the next action starts.

kafka-python sends group heartbeats from its own thread, so an SMTP transaction (bounded
by its timeout) never costs the group membership.

Re-checks need profiles at least as fresh as the action: an action read at wall time T
is sent only once the profile partitions were read up to their end offsets taken after
T. A profile written before the action was read is then always seen first. Partitions
added to ``customer-profiles`` are read from their beginning once the consumer's
metadata has them (``metadata_refresh_seconds``, 30), without a restart; a profile
written to such a partition before then can be missed by a re-check.
"""

from __future__ import annotations

import base64
import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Callable

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from stream.clients import KafkaSettings
from stream.clients.group_consumer import partitions_of, subscribe_when_known
from stream.sender.action import IGNORE_MALFORMED, Action, ErasureNotice, Ignored, decode_action, decode_record
from stream.sender.assignor import OneActiveSenderAssignor
from stream.sender.contacts import Contacts
from stream.sender.eligibility import SKIP_EXPIRED, SKIP_NO_CONTACT, Due, Expired, Hold, decode_profile, recheck, timing
from stream.sender.ledger import (EXPIRED, FAILED, PENDING, SENDING, SENT, SKIP_ERASED, SKIPPED, UNKNOWN, Ledger, Row, parse_source,
                                  settle_unconfirmed)
from stream.sender.metrics import SenderMetrics
from stream.sender.redact import redact
from stream.sender.render import RenderError, Renderer, build_message, render_context
from stream.sender.retry import backoff_seconds
from stream.sender.settings import SenderSettings
from stream.sender.smtp import DeliveryFailed, Transport

log = logging.getLogger("stream.sender")
# A profile partition whose position stays short of the end offset taken (a transaction
# marker past the last record, say) counts as read after this long without new records.
CATCH_UP_GRACE_SECONDS = 10.0
# How often the ledger is pruned (prune_after_days): a full scan of its finished rows.
PRUNE_EVERY_SECONDS = 3600.0
# Reading the erasure notices other senders read gives up after this long without progress.
CATCH_UP_TIMEOUT_SECONDS = 120.0
# How often a standby sender applies the erasure notices the active one read, so no
# ledger keeps an erased customer's rows for longer.
STANDBY_CATCH_UP_SECONDS = 60.0


@dataclass
class _CatchUp:
    taken_at: float
    ends: dict[TopicPartition, int]
    last_progress: float


def metadata_max_age_ms(settings: SenderSettings) -> int:
    return int(settings.metadata_refresh_seconds * 1000)


def actions_consumer_options(settings: SenderSettings, group_id: str, assignor: OneActiveSenderAssignor) -> dict[str, Any]:
    """How the sender's consumer of the actions topic joins its group and reads."""
    return {
        "group_id": group_id,
        "group_instance_id": settings.group_instance_id,  # static membership, when set
        # Every partition to one sender, the others stand by (stream/sender/assignor.py).
        "partition_assignment_strategy": [assignor],
        "session_timeout_ms": int(settings.session_timeout_seconds * 1000),
        "heartbeat_interval_ms": int(min(3.0, settings.session_timeout_seconds / 3) * 1000),
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        # An action from an aborted transaction (the playbook engine under exactly-once)
        # must never become an email.
        "isolation_level": "read_committed",
        # Partitions added to the actions topic are assigned within metadata_refresh_seconds
        # (30 s), not kafka-python's 5 minutes (the worker's consumers do the same).
        "metadata_max_age_ms": metadata_max_age_ms(settings),
    }


class Sender:
    def __init__(self, settings: SenderSettings, kafka: KafkaSettings, *, transport: Transport, renderer: Renderer,
                 contacts: Contacts, ledger: Ledger, metrics: SenderMetrics, group_id: str,
                 clock: Callable[[], float] = time.time, jitter: Callable[[], float] = random.random) -> None:
        self.settings = settings
        self.kafka = kafka
        self.transport = transport
        self.renderer = renderer
        self.contacts = contacts
        self.ledger = ledger
        self.metrics = metrics
        self.group_id = group_id
        self.clock = clock
        self.jitter = jitter
        # Actions read up to this wall time may be sent: profiles are read that far.
        self.profiles_seen_until = 0.0
        self._catch_up: _CatchUp | None = None
        self._actions: KafkaConsumer | None = None
        self._profiles: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self._next_prune = 0.0  # wall time of the next prune (prune_after_days)
        self._assignor = OneActiveSenderAssignor()
        # Holds the actions topic's partitions (and has caught up with the erasure
        # notices other senders read meanwhile): may send. None: not known yet.
        self.active: bool | None = None
        self._caught_up_at = -STANDBY_CATCH_UP_SECONDS  # monotonic time of the last catch-up
        # Unconfirmed rows may be in the ledger: settle them before taking in more.
        self._unsettled = False

    # -- lifecycle ---------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        for action_id in self.ledger.recover_in_flight():
            # See the README: the message may have been accepted before the crash.
            log.error("action %s was being sent when the sender stopped: recorded as unknown, not sent again", action_id)
            self.metrics.unknown.inc()
        # Rows a crash left between their ledger write and their offsets' commit.
        self._unsettled = bool(self.ledger.unconfirmed())
        self._connect()
        self.metrics.ready = True
        try:
            while not stop.is_set():
                self.metrics.beat()
                batch = self._actions.poll(timeout_ms=int(self._poll_timeout() * 1000), max_records=500)  # type: ignore[union-attr]
                self._follow_assignment()
                if (not self.active and batch) or (self._unsettled and not self._settle()):
                    self._read_again(batch)
                    continue
                self._intake(batch)
                self._read_profiles(self._profiles.poll(timeout_ms=0, max_records=5000))  # type: ignore[union-attr]
                if self.active:
                    self._track_profiles()
                    self._send_due(stop)
                elif self.active is False:
                    self._catch_up_while_standing_by()
                self.prune_if_due()
                self.metrics.pending.set(self.ledger.pending_count())
        finally:
            self.close()

    def prune_if_due(self) -> dict[str, int]:
        """Once an hour, delete the finished actions that expired more than
        ``prune_after_days`` ago; what was deleted, per state."""
        days = self.settings.prune_after_days
        now = self.clock()
        if not days or now < self._next_prune:
            return {}
        self._next_prune = now + PRUNE_EVERY_SECONDS
        counts = self.ledger.prune(now - days * 86_400)
        for state, count in counts.items():
            self.metrics.pruned.labels(state).inc(count)
        if counts:
            log.info("ledger pruned: %s", ", ".join(f"{state} {count}" for state, count in sorted(counts.items())))
        return counts

    def _connect(self) -> None:
        common = {**self.kafka.kafka_python_kwargs(), "client_id": "segments-sender"}
        topics = self.settings.topics
        self._producer = KafkaProducer(acks="all", linger_ms=5, **common)
        self._actions = KafkaConsumer(**actions_consumer_options(self.settings, self.group_id, self._assignor), **common)
        # Not at construction: kafka-python can hang in a rebalance a just-created
        # actions topic triggers (stream/clients/group_consumer.py).
        subscribe_when_known(self._actions, topics.actions)
        self._profiles = KafkaConsumer(group_id=None, enable_auto_commit=False, isolation_level="read_committed",
                                       metadata_max_age_ms=metadata_max_age_ms(self.settings), **common)
        self._read_profile_partitions(partitions_of(self._profiles, topics.customer_profiles))

    def _read_profile_partitions(self, partitions: set[int]) -> None:
        """Add these customer-profiles partitions to those read: from the offset the
        ledger stored for each, else from its beginning."""
        topic = self.settings.topics.customer_profiles
        assigned = set(self._profiles.assignment())  # type: ignore[union-attr]
        added = [tp for tp in (TopicPartition(topic, partition) for partition in sorted(partitions)) if tp not in assigned]
        if not added:
            return
        if assigned:
            log.info("reading the partitions %s added to %s", [tp.partition for tp in added], topic)
        # kafka-python keeps the positions of the partitions it already had.
        self._profiles.assign(sorted(assigned | set(added)))  # type: ignore[union-attr]
        stored = self.ledger.profile_offsets(topic)
        beginning = [tp for tp in added if tp.partition not in stored]
        if beginning:
            self._profiles.seek_to_beginning(*beginning)  # type: ignore[union-attr]
        for tp in added:
            if tp.partition in stored:
                self._profiles.seek(tp, stored[tp.partition])  # type: ignore[union-attr]

    def close(self) -> None:
        for close in (self.transport.close,
                      lambda: self._actions and self._actions.close(autocommit=False),
                      lambda: self._profiles and self._profiles.close(autocommit=False),
                      lambda: self._producer and self._producer.close(timeout=10)):
            try:
                close()
            except Exception:  # closing is best effort: the ledger already holds the truth
                log.debug("error while closing", exc_info=True)

    # -- active or standing by -----------------------------------------------------------

    def _follow_assignment(self) -> None:
        """Become active when the group gives this sender the actions topic's partitions,
        after applying the erasure notices read by whoever held them meanwhile; stand by
        when they go."""
        if not self._assignor.assignments:  # not in the group yet
            return
        active = bool(self._actions.assignment())  # type: ignore[union-attr]
        if active == self.active:
            return
        if active:
            try:
                self._catch_up_with_erasures(sorted(self._actions.assignment()))  # type: ignore[union-attr]
            except (KafkaError, RuntimeError) as error:  # not active yet: again next round
                log.warning("holding the partitions of %s, but could not read the erasure notices other senders read (%s);"
                            " sending nothing until it can", self.settings.topics.actions, error)
                active = False
            else:
                log.info("active: this sender holds the partitions of %s and sends", self.settings.topics.actions)
        else:
            log.info("standing by: no partition of %s is this sender's (another sender of group %s holds them, or a rebalance is"
                     " under way); it sends nothing until they come to it", self.settings.topics.actions, self.group_id)
        self.active = active
        self.metrics.set_active(active)

    def _catch_up_with_erasures(self, partitions: list[TopicPartition]) -> None:
        """Another sender may have read an erasure notice for a customer this ledger holds
        rows of (unsent actions from when this sender was last active, or sent ones to
        redact): read the notices of ``partitions`` between where this ledger stopped
        reading each and the group's committed offset, and apply them. Run by a standby
        every ``STANDBY_CATCH_UP_SECONDS``, and by a sender becoming active before it
        sends anything (its own reading starts at those committed offsets)."""
        topic = self.settings.topics.actions
        committed = {tp: self._actions.committed(tp) for tp in partitions}  # type: ignore[union-attr]
        ends = {tp: offset for tp, offset in committed.items() if offset is not None}
        seen = self.ledger.seen_offsets(topic)
        if self.ledger.has_rows():
            # A partition this ledger never read may still hold notices for its customers
            # (their actions came from another partition before the topic grew).
            ranges = {tp: (seen.get(tp.partition), end) for tp, end in ends.items() if seen.get(tp.partition, -1) < end}
            if ranges:
                notices = read_erasure_notices(self.kafka, ranges, timeout=CATCH_UP_TIMEOUT_SECONDS)
                for notice in notices:
                    self._erase(notice)
                if notices:
                    log.info("caught up with %d erasure notice(s) read by other senders on %s", len(notices), topic)
        self.ledger.store_seen_offsets(topic, {tp.partition: max(end, seen.get(tp.partition, end)) for tp, end in ends.items()})
        self._caught_up_at = time.monotonic()

    def _catch_up_while_standing_by(self) -> None:
        if time.monotonic() - self._caught_up_at < STANDBY_CATCH_UP_SECONDS:
            return
        topic = self.settings.topics.actions
        try:
            self._catch_up_with_erasures([TopicPartition(topic, p) for p in sorted(partitions_of(self._actions, topic))])  # type: ignore[arg-type]
        except (KafkaError, RuntimeError) as error:  # the broker away: again next round
            log.warning("could not read the erasure notices of %s (%s); trying again", topic, error)
            self._caught_up_at = time.monotonic()

    # -- intake -----------------------------------------------------------------------

    def _intake(self, batch: dict[TopicPartition, list[Any]]) -> None:
        if not batch:
            return
        actions: list[tuple[Action, str]] = []
        erasures: list[ErasureNotice] = []
        dead_letters = []
        for tp, records in batch.items():
            for record in records:
                decoded = decode_record(record.value)
                if isinstance(decoded, ErasureNotice):
                    erasures.append(decoded)
                    continue
                if isinstance(decoded, Ignored):
                    self.metrics.ignored.labels(decoded.reason).inc()
                    if decoded.reason == IGNORE_MALFORMED:
                        log.warning("malformed action record at %s[%d]@%d: %s", tp.topic, tp.partition, record.offset, decoded.detail)
                        dead_letters.append(self._dead_letter_malformed(record, decoded))
                    continue
                actions.append((decoded, f"{tp.topic}:{tp.partition}:{record.offset}"))
        for future in dead_letters:
            future.get(timeout=60)
        offsets = {tp: OffsetAndMetadata(records[-1].offset + 1, self.ledger.ledger_id, -1) for tp, records in batch.items()}
        # Durable before the offsets move: a crash in between re-reads the records, and the
        # ledger ignores the ids it has. Unconfirmed until the commit: if it fails, the
        # next holder of the partitions reads them again, so this ledger must not send them.
        seen = (self.settings.topics.actions, {tp.partition: offset.offset for tp, offset in offsets.items()})
        new = self.ledger.record_consumed(actions, now=self.clock(), confirmed=False, seen=seen)
        if len(new) < len(actions):
            log.info("%d redelivered action(s) already in the ledger", len(actions) - len(new))
        # After the batch's actions: an action of the erased customer read in the same
        # batch, even after the notice (a re-emission), is cancelled too.
        for notice in erasures:
            self._erase(notice)
        try:
            self._actions.commit(offsets)  # type: ignore[union-attr]
        except KafkaError as error:
            # Most likely a rebalance took the partitions, and their next holder reads these
            # records again; partitions still held are read again here (a commit refused
            # without a rebalance leaves the position past them). The next round settles
            # which rows the commit covered, before taking them in again.
            log.warning("could not commit action offsets (%s); the records will be read again", error)
            self._unsettled = True
            self._read_again(batch)
            return
        self.ledger.confirm(new)

    def _read_again(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """Leave a batch for later: the consumer reads it again (from the partitions it
        still holds; the others' next holder reads from the committed offsets)."""
        held = self._actions.assignment()  # type: ignore[union-attr]
        for tp, records in batch.items():
            if tp in held:
                self._actions.seek(tp, records[0].offset)  # type: ignore[union-attr]

    def _settle(self) -> bool:
        """Confirm or forget the unconfirmed rows (:func:`settle_unconfirmed`), before a
        batch that may read them again is taken in. False if the broker could not say."""
        rows = self.ledger.unconfirmed()
        partitions = {TopicPartition(where[0], where[1]) for where in (parse_source(source) for _, source in rows) if where is not None}
        try:
            committed = {
                (tp.topic, tp.partition): None if last is None else (last.offset, last.metadata)
                for tp in partitions for last in [self._actions.committed(tp, metadata=True)]  # type: ignore[union-attr]
            }
        except KafkaError as error:
            log.warning("cannot read the committed offsets of the actions topic (%s); trying again", error)
            return False
        confirm, forget = settle_unconfirmed(rows, committed, self.ledger.ledger_id)
        self.ledger.confirm(confirm)
        self.ledger.forget(forget)
        if forget:
            log.info("%d action(s) read but not committed forgotten: whoever holds their partitions reads them again", len(forget))
        self._unsettled = False
        return True

    def _erase(self, notice: ErasureNotice) -> None:
        cancelled = self.ledger.erase(notice.customer_id, erased_at=notice.at.timestamp(), now=self.clock())
        self.metrics.erasures.inc()
        self.metrics.skipped.labels(SKIP_ERASED).inc(len(cancelled))
        # By the notice's id, never the customer's: the log must not keep who was erased.
        log.info("erasure notice %s: %d unsent action(s) cancelled %s, the customer's ledger rows redacted",
                 notice.action_id, len(cancelled), cancelled)

    def _dead_letter_malformed(self, record: Any, ignored: Ignored) -> Any:
        try:
            original = orjson.loads(record.value) if record.value is not None else None
        except orjson.JSONDecodeError:
            original = None
        letter = {
            "reason": IGNORE_MALFORMED, "detail": ignored.detail, "action_id": ignored.action_id,
            "action": original if isinstance(original, dict) else None,
            "raw_base64": None if isinstance(original, dict) or record.value is None else base64.b64encode(record.value).decode(),
            "source": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
            "smtp": None, "failed_at": _iso(self.clock()),
        }
        return self._producer.send(self.settings.topics.dead_letter, key=record.key, value=orjson.dumps(letter))  # type: ignore[union-attr]

    # -- profiles ---------------------------------------------------------------------

    def _read_profiles(self, batch: dict[TopicPartition, list[Any]]) -> None:
        if not batch:
            return
        updates = []
        offsets: dict[int, int] = {}
        for tp, records in batch.items():
            for record in records:
                if record.value is None:  # a tombstone: the customer is gone
                    if record.key is not None:
                        updates.append((record.key.decode("utf-8", "replace"), None))
                    continue
                profile = decode_profile(record.value)
                if profile is None:
                    log.warning("unusable customer profile at %s[%d]@%d: ignored", tp.topic, tp.partition, record.offset)
                    continue
                updates.append((profile.customer_id, profile))
            offsets[tp.partition] = records[-1].offset + 1
        self.ledger.store_profiles(self.settings.topics.customer_profiles, updates, offsets)
        if self._catch_up is not None:
            self._catch_up.last_progress = time.monotonic()

    def _track_profiles(self) -> None:
        """Advance ``profiles_seen_until`` (see the module docstring). Asks the broker for
        end offsets only while some pending action waits for it."""
        newest = self.ledger.newest_pending_consumed_at()
        if self._catch_up is None:
            if newest is None or newest < self.profiles_seen_until:
                return
            # As the consumer's metadata has them now: partitions added since are read too.
            self._read_profile_partitions(
                self._profiles.partitions_for_topic(self.settings.topics.customer_profiles) or set()  # type: ignore[union-attr]
            )
            partitions = list(self._profiles.assignment())  # type: ignore[union-attr]
            taken_at = self.clock()
            try:
                ends = self._profiles.end_offsets(partitions)  # type: ignore[union-attr]
            except KafkaError as error:  # the broker is away: sends wait, try again next round
                log.warning("cannot read the end offsets of the profiles (%s); sends wait", error)
                return
            self._catch_up = _CatchUp(taken_at, ends, time.monotonic())
        catch_up = self._catch_up
        behind = [tp for tp, end in catch_up.ends.items() if self._profiles.position(tp) < end]  # type: ignore[union-attr]
        if behind and time.monotonic() - catch_up.last_progress < CATCH_UP_GRACE_SECONDS:
            return
        if behind:
            log.warning("profile partitions %s stay short of their end offsets; sending anyway", [tp.partition for tp in behind])
        self.profiles_seen_until = catch_up.taken_at
        self._catch_up = None

    # -- sending -----------------------------------------------------------------------

    def _poll_timeout(self) -> float:
        if not self.active:
            return self.settings.poll_seconds
        next_at = self.ledger.next_attempt_at()
        if next_at is None:
            return self.settings.poll_seconds
        wait = next_at - self.clock()
        if wait <= 0:
            # Due but possibly waiting for the profiles: poll briefly, then look again.
            return 0.0 if self._catch_up is None and self.profiles_seen_until >= (self.ledger.newest_pending_consumed_at() or 0) else 0.05
        return min(self.settings.poll_seconds, wait)

    def _send_due(self, stop: threading.Event) -> None:
        rows = self.ledger.due(self.clock(), consumed_before=self.profiles_seen_until, limit=self.settings.send_batch)
        for row in rows:
            if stop.is_set():
                return
            self.metrics.beat()
            try:
                self._process(row)
            except (KafkaError, OSError, ValueError, TypeError, KeyError) as error:
                # Not the action's fault (Kafka unreachable for a dead letter, a bug): keep
                # it, try again later. A ledger (sqlite3) error is not caught: without a
                # durable ledger the sender must stop rather than risk a second copy.
                log.exception("action %s: unexpected error, retried later", row.action_id)
                self._after_unexpected(row, error)

    def _process(self, row: Row) -> None:
        decoded = decode_action(orjson.dumps(row.record), schema_check=False)  # checked when it was read
        if not isinstance(decoded, Action):  # the schema changed under a stored action
            self._fail(row, PENDING, reason=decoded.reason, detail=decoded.detail)
            return
        action = decoded
        now = self.clock()
        when = timing(action, datetime.fromtimestamp(now, UTC))
        if isinstance(when, Expired):
            self._skip(row, SKIP_EXPIRED, EXPIRED)
            return
        if isinstance(when, Hold):
            self.ledger.transition(row.action_id, PENDING, PENDING, next_attempt_at=when.until.timestamp())
            return
        assert isinstance(when, Due)
        profile = self.ledger.profile(action.customer_id)
        reason = recheck(action, profile)
        if reason is not None:
            self._skip(row, reason)
            return
        contact = self.contacts.lookup(action.customer_id)
        if contact is None:
            self._skip(row, SKIP_NO_CONTACT)
            return
        smtp = self.settings.smtp
        try:
            rendered = self.renderer.render(action.template, render_context(action, profile, contact))
            message = build_message(rendered, action_id=action.action_id, sender=smtp.from_address, sender_name=smtp.from_name,
                                    recipient=contact, message_id_domain=smtp.id_domain(), now=datetime.fromtimestamp(now, UTC))
        except RenderError as error:
            self._fail(row, PENDING, reason=error.reason, detail=error.detail)
            return
        except (ValueError, TypeError) as error:  # an address or header the email package refuses
            self._fail(row, PENDING, reason="message_error", detail=f"{type(error).__name__}: {redact(str(error))}")
            return
        attempts = row.attempts + 1

        def before_end_of_data() -> None:
            self.ledger.transition(row.action_id, PENDING, SENDING, attempts=attempts)

        try:
            code, reply = self.transport.send(message, sender=smtp.from_address, recipient=contact.email, before_end_of_data=before_end_of_data)
        except DeliveryFailed as error:
            failure = error.failure
            # The hook ran (the row is "sending") exactly when the failure came after it.
            current = SENDING if failure.stage == "data_end" else PENDING
            if failure.kind == "in_doubt":
                self.ledger.transition(row.action_id, current, UNKNOWN, reason="no_reply_after_data",
                                       smtp_reply=failure.reply)
                self.metrics.unknown.inc()
                log.error("action %s: no reply after the end of data (%s); it may have been delivered: recorded as unknown, not retried",
                          row.action_id, failure.reply)
            elif failure.kind == "transient":
                delay = backoff_seconds(attempts, initial=self.settings.retry_initial_seconds,
                                        maximum=self.settings.retry_max_seconds, jitter=self.jitter())
                self.ledger.transition(row.action_id, current, PENDING, attempts=attempts, next_attempt_at=self.clock() + delay,
                                       reason="retrying", smtp_code=failure.code, smtp_reply=failure.reply)
                self.metrics.failed.labels("transient").inc()
                log.warning("action %s: transient SMTP failure at %s (%s %s); attempt %d, retry in %.1f s",
                            row.action_id, failure.stage, failure.code, failure.reply, attempts, delay)
            else:
                self._fail(row, current, reason="smtp_permanent", detail=failure.reply, failure=failure)
            return
        self.ledger.transition(row.action_id, SENDING, SENT, reason="", smtp_code=code, smtp_reply=redact(reply)[:500])
        self.metrics.sent.labels(action.channel).inc()
        log.debug("action %s sent (%d)", row.action_id, code)

    def _skip(self, row: Row, reason: str, state: str = SKIPPED) -> None:
        self.ledger.transition(row.action_id, PENDING, state, reason=reason)
        self.metrics.skipped.labels(reason).inc()
        log.info("action %s not sent: %s", row.action_id, reason)  # the action id, not the customer (PII)

    def _fail(self, row: Row, current: str, *, reason: str, detail: str, failure: Any = None) -> None:
        """Permanent failure: the dead letter first (acknowledged), then the ledger. A crash
        in between repeats the dead letter, never loses it."""
        letter = {
            "reason": reason, "detail": detail, "action_id": row.action_id, "action": row.record,
            "smtp": None if failure is None else {"code": failure.code, "reply": failure.reply, "stage": failure.stage},
            "source": None, "raw_base64": None, "failed_at": _iso(self.clock()),
        }
        self._producer.send(self.settings.topics.dead_letter, key=row.customer_id.encode(),  # type: ignore[union-attr]
                            value=orjson.dumps(letter)).get(timeout=60)
        self.ledger.transition(row.action_id, current, FAILED, reason=reason, attempts=row.attempts + (failure is not None),
                               smtp_code=None if failure is None else failure.code,
                               smtp_reply=None if failure is None else failure.reply)
        self.metrics.failed.labels("permanent").inc()
        log.error("action %s failed permanently (%s): %s", row.action_id, reason, detail)

    def _after_unexpected(self, row: Row, error: Exception) -> None:
        current = self.ledger.get(row.action_id)
        if current is None:
            return
        if current.state == SENDING:
            self.ledger.transition(row.action_id, SENDING, UNKNOWN, reason=f"error_during_send: {type(error).__name__}")
            self.metrics.unknown.inc()
        elif current.state == PENDING:
            attempts = current.attempts + 1
            delay = backoff_seconds(attempts, initial=self.settings.retry_initial_seconds,
                                    maximum=self.settings.retry_max_seconds, jitter=self.jitter())
            self.ledger.transition(row.action_id, PENDING, PENDING, attempts=attempts, next_attempt_at=self.clock() + delay,
                                   reason=f"retrying after {type(error).__name__}")
            self.metrics.failed.labels("transient").inc()


def read_erasure_notices(kafka: KafkaSettings, ranges: dict[TopicPartition, tuple[int | None, int]], *,
                         timeout: float) -> list[ErasureNotice]:
    """The erasure notices at offsets [start, end) of each partition (start None: from
    the partition's beginning), in offset order per partition; raises RuntimeError if
    reading makes no progress for ``timeout`` seconds (a sender must not send without
    them)."""
    consumer = KafkaConsumer(group_id=None, enable_auto_commit=False, isolation_level="read_committed", auto_offset_reset="earliest",
                             **kafka.kafka_python_kwargs(), client_id="segments-sender-catch-up")
    try:
        consumer.assign(sorted(ranges))
        for tp, (start, _) in ranges.items():
            if start is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, start)
        notices: list[ErasureNotice] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end for tp, (_, end) in ranges.items()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no progress reading the erasure notices of {sorted(ranges)} for {timeout:.0f} s")
            batch = consumer.poll(timeout_ms=500)
            if batch:
                deadline = time.monotonic() + timeout
            for tp, records in batch.items():
                end = ranges[tp][1]
                notices.extend(decoded for record in records if record.offset < end
                               for decoded in [decode_record(record.value)] if isinstance(decoded, ErasureNotice))
        return notices
    finally:
        consumer.close(autocommit=False)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
