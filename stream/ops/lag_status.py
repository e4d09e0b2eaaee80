"""Burrow-style consumer lag status over a sliding window of offset samples.

Pure: no Kafka imports. ``stream/clients/lag.py`` reads the offsets and commit times;
``segments lag`` (``stream/cli/lag.py``) samples, calls :func:`evaluate_group` and prints.

A *sample* of a partition is ``(time, committed offset, log-end offset, log-start
offset)``; lag = end - committed. A partition's *window* is its last N samples. The
status of a partition is the first of these rules that holds:

1. ``ERR``: the latest sample's offsets are unreadable, or its committed offset is
   beyond the log end, or below the log start (records deleted before the group read
   them).
2. ``OK``: lag is 0 in any sample of the window (Burrow's rule), the latest included.
3. ``STOP``: lag > 0 and either no live member of the group owns the partition (the
   consumer is not running), or the group has not committed this partition for longer
   than ``stop_after`` seconds. Commit times come from ``__consumer_offsets`` as Burrow
   reads them; when that topic cannot be read (ACLs), the time since the last commit is
   taken as how long the committed offset has stayed unchanged across the samples, a
   lower bound.
4. ``STALL``: lag > 0, the partition is owned and was committed recently, but the
   committed offset is the same in every sample of the window (at least 2 samples): the
   consumer is alive and committing, yet not advancing.
5. ``WARN``: the committed offset moves, but lag grew at every step of the window (at
   least 3 samples): the consumer is falling behind.
6. ``OK`` otherwise.

Where this departs from Burrow, on purpose: rule 2 comes before ``STOP`` (Burrow checks
``STOP`` first when the latest lag is non-zero), so a consumer that was caught up
within the window is not reported stopped until that sample leaves the window; ``WARN``
needs lag to *grow* at every step (Burrow: to never shrink); there is no ``REWIND``.

A partition a member owns but the group never committed (faust's table changelogs,
which the worker tracks itself; a consumer that has not committed yet) has no lag and
counts as ``OK``. Except a partition of a topic the group reads from (a *source*: the
worker's input topics, say), which the group's consumers start reading at the log start
when they have no committed offset: its lag counts from there (``unread_from``), so
events on an input topic the worker never committed are lag too. Such a partition with
lag > 0 is ``STOP`` when no live member owns it; owned, it is ``OK`` (not committed yet).

The group's status is its worst partition's, in the order ERR > STOP > STALL > WARN >
OK; a group with no committed offsets and no assigned partitions is ``ERR`` (a wrong
group id, or a group that never ran), its source partitions listed with their lag.
:func:`exit_code`: 0 when everything is OK, 1 when the worst is WARN, 2 for STALL, STOP
or ERR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Mapping, Sequence

# (topic, partition): kafka-python's TopicPartition is a namedtuple of the same shape.
TP = tuple[str, int]

# Group states in which members hold no assignment yet: ownership is unknown, not absent.
REBALANCING_STATES = frozenset({"PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling"})


class Status(IntEnum):
    """Partition or group status; a higher value is worse."""

    OK = 0
    WARN = 1
    STALL = 2
    STOP = 3
    ERR = 4


@dataclass(frozen=True)
class Sample:
    """One partition's offsets at one instant (seconds since the epoch)."""

    at: float
    committed: int | None
    end: int | None
    start: int | None = None
    # Why the offsets could not be read; None when they could.
    error: str | None = None
    # A source partition the group never committed: where its consumers will start.
    unread_from: int | None = None

    @property
    def lag(self) -> int | None:
        if self.end is None:
            return None
        if self.committed is None:
            return None if self.unread_from is None else max(0, self.end - self.unread_from)
        return self.end - self.committed

    @property
    def valid(self) -> bool:
        """Readable, committed, and within [log start, log end]: usable for the window rules."""
        if self.error is not None or self.committed is None or self.end is None:
            return False
        if self.committed > self.end:
            return False
        return self.start is None or self.committed >= self.start


@dataclass(frozen=True)
class CommitAge:
    """How long ago the group last committed a partition.

    ``seconds`` is exact for source ``commit-log``; a lower bound when ``at_least`` (no
    commit found within the commit log's lookback, or the ``samples`` fallback).
    """

    seconds: float
    source: str  # "commit-log" or "samples"
    at_least: bool = False


@dataclass(frozen=True)
class PartitionStatus:
    status: Status
    reason: str
    lag: int | None
    commit_age: CommitAge | None = None


def commit_age_from_samples(window: Sequence[Sample]) -> CommitAge | None:
    """The fallback when commit times are unknown: how long the latest committed offset
    has stayed unchanged across the window's valid samples (a lower bound)."""
    valid = [sample for sample in window if sample.valid]
    if not valid:
        return None
    latest = valid[-1]
    since = latest.at
    for sample in reversed(valid):
        if sample.committed != latest.committed:
            break
        since = sample.at
    return CommitAge(seconds=latest.at - since, source="samples", at_least=True)


def evaluate_partition(
    window: Sequence[Sample],
    *,
    owned: bool | None,
    commit_age: CommitAge | None,
    stop_after: float,
) -> PartitionStatus:
    """Apply the module's rules to one partition's window (oldest sample first).

    ``owned``: whether a live member of the group owns the partition now; None when
    unknown (the group is rebalancing, or its members could not be described).
    ``commit_age``: from the commit log; None to fall back to the samples.
    """
    if not window:
        raise ValueError("a window needs at least one sample")
    latest = window[-1]
    if latest.error is not None:
        return PartitionStatus(Status.ERR, latest.error, None)
    if latest.end is None:
        return PartitionStatus(Status.ERR, "log-end offset unreadable", None)
    if latest.committed is None:
        return _never_committed(latest, owned)
    lag = latest.lag
    if latest.committed > latest.end:
        return PartitionStatus(Status.ERR, f"committed offset {latest.committed} is beyond the log end {latest.end}", lag)
    if latest.start is not None and latest.committed < latest.start:
        return PartitionStatus(
            Status.ERR,
            f"committed offset {latest.committed} is below the log start {latest.start} (records deleted unread)",
            lag,
        )

    valid = [sample for sample in window if sample.valid]
    age = commit_age if commit_age is not None else commit_age_from_samples(valid)
    if lag == 0:
        return PartitionStatus(Status.OK, "caught up", lag, age)
    if any(sample.lag == 0 for sample in valid):
        return PartitionStatus(Status.OK, "lag was 0 within the window", lag, age)

    stopped = []
    if owned is False:
        stopped.append("no live member of the group owns the partition")
    if age is not None and age.seconds > stop_after:
        qualifier = "at least " if age.at_least else ""
        how = "the committed offset unchanged" if age.source == "samples" else "no commit"
        stopped.append(f"{how} for {qualifier}{age.seconds:.0f}s (> {stop_after:g}s)")
    if stopped:
        return PartitionStatus(Status.STOP, "; ".join(stopped), lag, age)

    committed = [sample.committed for sample in valid]
    if len(valid) >= 2 and len(set(committed)) == 1:
        span = valid[-1].at - valid[0].at
        return PartitionStatus(
            Status.STALL, f"committed offset stuck at {latest.committed} over {len(valid)} samples ({span:.0f}s) with lag > 0", lag, age
        )
    lags = [sample.lag for sample in valid]
    if len(valid) >= 3 and len(set(committed)) > 1 and all(b > a for a, b in zip(lags, lags[1:])):  # type: ignore[operator]
        return PartitionStatus(Status.WARN, "lag grew at every sample: " + " → ".join(map(str, lags)), lag, age)
    return PartitionStatus(Status.OK, "consuming", lag, age)


def _never_committed(latest: Sample, owned: bool | None) -> PartitionStatus:
    lag = latest.lag
    if latest.unread_from is None:
        return PartitionStatus(Status.OK, "never committed by the group", None)
    if not lag:
        return PartitionStatus(Status.OK, "never committed by the group; nothing to read", lag)
    if owned is False:
        return PartitionStatus(
            Status.STOP, f"never committed by the group, {lag} record(s) to read from offset {latest.unread_from}; "
            "no live member of the group owns the partition", lag,
        )
    return PartitionStatus(Status.OK, "not committed by the group yet", lag)


@dataclass(frozen=True)
class Owner:
    """The group member that owns a partition."""

    member_id: str
    client_id: str
    host: str

    def label(self) -> str:
        return f"{self.client_id}@{self.host.lstrip('/')}"


@dataclass(frozen=True)
class GroupSnapshot:
    """What was read about one group at one instant."""

    group: str
    at: float
    committed: Mapping[TP, int] = field(default_factory=dict)
    ends: Mapping[TP, int] = field(default_factory=dict)
    starts: Mapping[TP, int] = field(default_factory=dict)
    # None: the members could not be described.
    owners: Mapping[TP, Owner] | None = None
    state: str | None = None
    members: int = 0
    # Per partition: why its log offsets could not be read.
    errors: Mapping[TP, str] = field(default_factory=dict)
    # The whole group could not be read (its committed offsets): every partition is ERR.
    error: str | None = None
    # The partitions of the topics the group reads from, as far as known: without a
    # committed offset, its consumers start at the log start.
    sources: frozenset[TP] = frozenset()

    def partitions(self) -> set[TP]:
        return set(self.committed) | set(self.owners or {}) | set(self.errors) | set(self.sources)

    def unread_from(self, tp: TP) -> int | None:
        """Where the group starts reading ``tp``, a source partition it never committed."""
        if tp in self.committed or tp not in self.sources:
            return None
        return self.starts.get(tp)


@dataclass(frozen=True)
class PartitionEvaluation:
    topic: str
    partition: int
    samples: tuple[Sample, ...]
    owner: Owner | None
    result: PartitionStatus

    @property
    def latest(self) -> Sample:
        return self.samples[-1]


@dataclass(frozen=True)
class GroupEvaluation:
    group: str
    status: Status
    reason: str
    at: float
    state: str | None
    members: int
    partitions: tuple[PartitionEvaluation, ...]
    commit_time_source: str

    def lag(self) -> int:
        return sum(p.result.lag or 0 for p in self.partitions if p.result.lag and p.result.lag > 0)


def evaluate_group(
    window: Sequence[GroupSnapshot],
    *,
    stop_after: float,
    last_commits: Mapping[TP, float] | None = None,
    commit_log_from: float | None = None,
) -> GroupEvaluation:
    """Evaluate every partition of the latest snapshot over the window of snapshots.

    ``last_commits``: when the group last committed each partition (seconds since the
    epoch), from the commit log read from instant ``commit_log_from`` on; a partition
    missing from it was not committed since then. None when the commit log could not be
    read: ages then come from the samples.
    """
    if not window:
        raise ValueError("a window needs at least one snapshot")
    latest = window[-1]
    source = "commit-log" if last_commits is not None else "samples"

    if latest.error is not None:
        # Keep showing the partitions last seen, each in error, so a watch keeps its rows.
        known = next((s.partitions() for s in reversed(window) if s.error is None), set())
        partitions = tuple(
            PartitionEvaluation(topic, partition, (Sample(latest.at, None, None, error=latest.error),), None,
                                PartitionStatus(Status.ERR, latest.error, None))
            for topic, partition in sorted(known)
        )
        return GroupEvaluation(latest.group, Status.ERR, latest.error, latest.at, latest.state, latest.members, partitions, source)

    ownership_known = latest.owners is not None and latest.state not in REBALANCING_STATES
    evaluations = []
    for tp in sorted(latest.partitions()):
        samples = tuple(
            Sample(s.at, s.committed.get(tp), s.ends.get(tp), s.starts.get(tp), s.errors.get(tp), s.unread_from(tp))
            for s in window
            if s.error is None
        )
        owner = (latest.owners or {}).get(tp)
        owned = (owner is not None) if ownership_known else None
        age = None
        if last_commits is not None:
            if tp in last_commits:
                age = CommitAge(max(0.0, latest.at - last_commits[tp]), "commit-log")
            elif commit_log_from is not None:
                # Not committed since the commit log was read from: at least that long ago.
                age = CommitAge(max(0.0, latest.at - commit_log_from), "commit-log", at_least=True)
        result = evaluate_partition(samples, owned=owned, commit_age=age, stop_after=stop_after)
        evaluations.append(PartitionEvaluation(tp[0], tp[1], samples, owner, result))

    if not latest.committed and not latest.owners:
        # Its source partitions, if any, are listed with what waits there.
        return GroupEvaluation(
            latest.group, Status.ERR, "no committed offsets and no assigned partitions (wrong group id, or it never ran?)",
            latest.at, latest.state, latest.members, tuple(evaluations), source,
        )
    worst = max(evaluations, key=lambda e: e.result.status)
    status = worst.result.status
    if status is Status.OK:
        reason = "all partitions OK"
    else:
        count = sum(1 for e in evaluations if e.result.status is status)
        reason = f"{count} partition(s) {status.name}: {worst.topic}[{worst.partition}] {worst.result.reason}"
    return GroupEvaluation(latest.group, status, reason, latest.at, latest.state, latest.members, tuple(evaluations), source)


def exit_code(statuses: Sequence[Status]) -> int:
    """0 when everything is OK, 1 when the worst is WARN, 2 for STALL, STOP or ERR."""
    worst = max(statuses, default=Status.OK)
    if worst is Status.OK:
        return 0
    return 1 if worst is Status.WARN else 2
