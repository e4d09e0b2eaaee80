"""Reading what ``segments lag`` evaluates: a group's committed offsets, its members'
assignments and the log offsets (like ``kafka-consumer-groups --describe``), and when
the group last committed each partition (from ``__consumer_offsets``, like Burrow).

The evaluation itself is pure and lives in ``stream/ops/lag_status.py``.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Iterable

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError

from stream.clients.consumer_offsets import CommitRecordError, coordinator_partition, decode_key, decode_value
from stream.clients.settings import KafkaSettings
from stream.ops.lag_status import TP, GroupSnapshot, Owner

log = logging.getLogger(__name__)

CONSUMER_OFFSETS = "__consumer_offsets"
# A dead broker should fail a sample quickly, not hang a cron job for kafka-python's 30 s.
TIMEOUT_MS = 10_000


def _describe(error: BaseException) -> str:
    text = str(error)
    name = type(error).__name__
    return text if text.startswith(name) else f"{name}: {text}" if text else name


class GroupOffsetsReader:
    """Snapshots of consumer groups, over one admin connection reused across samples."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._kafka = kafka
        self._admin: KafkaAdminClient | None = None
        # The last connection attempt failed: Kafka could not be reached at all.
        self.unreachable = False

    def _client(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = KafkaAdminClient(
                client_id="segments-lag", request_timeout_ms=TIMEOUT_MS, bootstrap_timeout_ms=TIMEOUT_MS,
                **self._kafka.kafka_python_kwargs(),
            )
        return self._admin

    def existing_groups(self) -> set[str] | None:
        """The consumer groups the cluster knows (None if it can't be asked)."""
        try:
            return {group["group_id"] for group in self._client().list_groups()}
        except KafkaError:
            return None

    def snapshot(self, group: str, sources: Iterable[str] = ()) -> GroupSnapshot:
        """One sample of ``group``; a failure becomes the snapshot's ``error``, never an exception.

        ``sources``: the topics the group reads from (its consumers start at the log start
        of a partition they never committed), so their partitions count lag before the
        group's first commit there."""
        try:
            admin = self._client()
            self.unreachable = False
        except KafkaError as error:
            self.unreachable = True
            return GroupSnapshot(group, time.time(), error=f"cannot reach Kafka at {self._kafka.bootstrap_servers}: {_describe(error)}")
        state, members, owners = None, 0, None
        try:
            description = admin.describe_groups([group]).get(group, {})
            if not description.get("error"):
                state = description.get("group_state")
                members = len(description.get("members") or [])
                owners = _owners(description)
        except KafkaError as error:
            log.info("cannot describe group %s: %s", group, error)
        # Committed offsets first, log ends second: an end read later can only be larger,
        # so a live consumer never looks "beyond the log end" from the order of the reads.
        try:
            offsets = admin.list_group_offsets(group).get(group, {})
        except KafkaError as error:
            return GroupSnapshot(group, time.time(), owners=owners, state=state, members=members,
                                 error=f"committed offsets unreadable: {_describe(error)}")
        committed = {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
        source_partitions = self._partitions_of(admin, sources)
        partitions = set(committed) | set(owners or {}) | source_partitions
        ends, errors = self._log_offsets(admin, partitions, OffsetSpec.LATEST)
        starts, _ = self._log_offsets(admin, set(ends), OffsetSpec.EARLIEST)
        return GroupSnapshot(group, time.time(), committed=committed, ends=ends, starts=starts, owners=owners,
                             state=state, members=members, errors=errors, sources=frozenset(source_partitions))

    @staticmethod
    def _partitions_of(admin: KafkaAdminClient, topics: Iterable[str]) -> set[TP]:
        """The partitions of those of ``topics`` that exist (none, if the broker won't say:
        the committed offsets still count)."""
        names = sorted(set(topics))
        if not names:
            return set()
        try:
            described = admin.describe_topics(names)
        except KafkaError as error:
            log.info("cannot describe topics %s: %s", names, error)
            return set()
        return {
            (topic["name"], partition["partition_index"])
            for topic in described if topic.get("error_code") == 0
            for partition in topic.get("partitions") or []
        }

    @staticmethod
    def _log_offsets(admin: KafkaAdminClient, partitions: Iterable[TP], spec: OffsetSpec) -> tuple[dict[TP, int], dict[TP, str]]:
        by_topic: dict[str, list[TP]] = defaultdict(list)
        for tp in partitions:
            by_topic[tp[0]].append(tp)
        offsets: dict[TP, int] = {}
        errors: dict[TP, str] = {}
        # One request for all; on failure (a deleted topic fails the whole call), topic by topic.
        try:
            found = admin.list_partition_offsets({TopicPartition(*tp): spec for tp in partitions}, timeout_ms=TIMEOUT_MS)
            return {(tp.topic, tp.partition): value.offset for tp, value in found.items()}, {}
        except KafkaError:
            pass
        for topic, tps in by_topic.items():
            try:
                found = admin.list_partition_offsets({TopicPartition(*tp): spec for tp in tps}, timeout_ms=TIMEOUT_MS)
                offsets.update({(tp.topic, tp.partition): value.offset for tp, value in found.items()})
            except KafkaError as error:
                errors.update({tp: f"log offsets unreadable: {_describe(error)}" for tp in tps})
        return offsets, errors

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None


def _owners(description: dict) -> dict[TP, Owner] | None:
    """Partition owners from a described group's member assignments (the standard
    consumer protocol; faust's assignor uses it too, with its own user_data)."""
    if description.get("protocol_type") not in ("consumer", ""):
        return None
    owners: dict[TP, Owner] = {}
    for member in description.get("members") or []:
        assignment = member.get("member_assignment")
        if not isinstance(assignment, dict):
            if assignment:
                return None  # an assignment kafka-python could not decode: ownership unknown
            continue
        owner = Owner(member_id=member.get("member_id", ""), client_id=member.get("client_id", ""), host=member.get("client_host", ""))
        for item in assignment.get("assigned_partitions") or []:
            for partition in item["partitions"]:
                owners[(item["topic"], partition)] = owner
    return owners


class CommitLog:
    """When some groups last committed each partition, from ``__consumer_offsets``.

    Reads the groups' partitions of the topic from ``lookback`` seconds before it was
    created (found with offsets_for_times), then incrementally on each :meth:`refresh`.
    When the topic cannot be read (ACLs, ...), :attr:`error` says why and
    :meth:`last_commits` returns None: callers fall back to the samples.
    """

    def __init__(self, kafka: KafkaSettings, groups: Iterable[str], lookback: float) -> None:
        self.groups = set(groups)
        self.since = time.time() - lookback
        self.error: str | None = None
        self._kafka = kafka
        self._consumer: KafkaConsumer | None = None
        self._assigned: list[TopicPartition] = []
        self._latest: dict[str, dict[TP, float]] = defaultdict(dict)
        self.skipped = 0

    def _start(self) -> KafkaConsumer:
        consumer = KafkaConsumer(
            client_id="segments-lag-commits", group_id=None, enable_auto_commit=False,
            # Transactional (exactly-once) offset commits count once their transaction commits.
            isolation_level="read_committed", request_timeout_ms=TIMEOUT_MS + 1000,
            bootstrap_timeout_ms=TIMEOUT_MS, **self._kafka.kafka_python_kwargs(),
        )
        try:
            count = len(consumer.partitions_for_topic(CONSUMER_OFFSETS) or ())
            # No such topic yet: no group has ever committed, and there is nothing to read.
            self._assigned = sorted({TopicPartition(CONSUMER_OFFSETS, coordinator_partition(g, count)) for g in self.groups}) if count else []
            if self._assigned:
                consumer.assign(self._assigned)
                found = consumer.offsets_for_times({tp: int(self.since * 1000) for tp in self._assigned}, timeout_ms=TIMEOUT_MS)
                for tp in self._assigned:
                    if found.get(tp) is None:
                        consumer.seek_to_end(tp)  # nothing written since `since`
                    else:
                        consumer.seek(tp, found[tp].offset)
        except BaseException:
            consumer.close()
            raise
        return consumer

    def refresh(self, timeout: float = 15.0) -> None:
        """Read what was written since the last refresh, up to the current end."""
        try:
            if self._consumer is None:
                self._consumer = self._start()
            if not self._assigned:
                self.error = None
                return
            consumer = self._consumer
            ends = consumer.end_offsets(self._assigned, timeout_ms=TIMEOUT_MS)
            deadline = time.monotonic() + timeout
            while any(consumer.position(tp) < ends[tp] for tp in self._assigned):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{CONSUMER_OFFSETS} not read to its end within {timeout:.0f}s")
                for records in consumer.poll(timeout_ms=500).values():
                    for record in records:
                        self._take(record.key, record.value)
            self.error = None
        except (KafkaError, TimeoutError) as error:
            self.error = f"{CONSUMER_OFFSETS} unreadable: {_describe(error)}"
            self.close()

    def _take(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        try:
            commit_key = decode_key(key)
            if commit_key is None or commit_key.group not in self.groups:
                return
            commit = decode_value(value)
        except CommitRecordError:
            self.skipped += 1
            return
        tp = (commit_key.topic, commit_key.partition)
        if commit is None:
            self._latest[commit_key.group].pop(tp, None)
        else:
            self._latest[commit_key.group][tp] = commit.commit_timestamp_ms / 1000

    def last_commits(self, group: str) -> dict[TP, float] | None:
        """Last commit time per partition (seconds since the epoch); None if unreadable."""
        if self.error is not None:
            return None
        return dict(self._latest.get(group, {}))

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
