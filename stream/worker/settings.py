"""Worker settings: the ``[worker]`` table of the config file, overridden by CLI flags."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stream.clients import ConfigError
from stream.clients.settings import GroupInstanceId, config_error
from stream.core.events import DEFAULT_MAX_EVENT_LEAD_SECONDS

COMMIT_INTERVAL_SECONDS = 1.0
ROCKSDB_MEMORY_MIB = 256


class Topics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    orders: str = "orders"
    carts: str = "carts"
    email_opens: str = "email-opens"
    # Erasure requests (schemas/erasure.schema.json), merged with the events in time order.
    erasures: str = "erasures"
    dead_letter: str = "events-dlq"
    segment_changes: str = "segment-changes"
    customer_profiles: str = "customer-profiles"
    # Internal: validated events keyed by customer, plus clock ticks.
    events: str = "segments-events"

    def inputs(self) -> list[str]:
        return [self.orders, self.carts, self.email_opens, self.erasures]


class CompactionLag(BaseModel):
    """After an erasure, the customer's older values stay in the compacted topics that
    hold customer data (the worker's customers, timers and history changelogs,
    customer-profiles, the playbooks app's policies changelog) until compaction removes
    them, and Kafka compacts only closed segments of a log "dirty" enough: maybe never for
    a large, quiet changelog. Kafka's max.compaction.lag.ms bounds that (it also rolls the
    open segment); the apps set it on those topics when they create them."""

    max_compaction_lag_days: float = Field(7.0, gt=0, le=365)
    # The segment length of those changelogs. Compaction cleans closed segments only, so
    # the open one's records are all read by a worker restoring its tables (a new
    # machine, a lost volume): faust restored about 9,700 records a second on a 2-core
    # machine, and a week of a busy shop's writes is hundreds of millions of them.
    changelog_segment_minutes: float = Field(60.0, gt=0, le=10_080)

    @property
    def max_compaction_lag_ms(self) -> int:
        return round(self.max_compaction_lag_days * 86_400_000)

    @property
    def changelog_segment_ms(self) -> int:
        return round(self.changelog_segment_minutes * 60_000)


class WorkerSettings(CompactionLag):
    model_config = ConfigDict(extra="forbid")

    app_id: str = "segments"
    topics: Topics = Field(default_factory=Topics)
    # Partitions of the topics the worker creates (inputs if missing, internal, outputs).
    partitions: int = Field(4, ge=1, le=1024)
    replication_factor: int = Field(1, ge=1)
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    clock: Literal["wall", "event"] = "wall"
    tick_interval_seconds: float = Field(1.0, gt=0)
    data_dir: str = ".segments/worker"
    rules_file: str | None = None
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=0, le=65535)
    # When set (or SEGMENTS_WEB_TOKEN is), every web endpoint but /healthz and /readyz
    # requires "Authorization: Bearer <token>". Meant for web_host beyond loopback.
    web_token: str | None = None
    # The dashboard's time series: one sample per interval, one hour kept.
    sample_seconds: float = Field(2.0, gt=0)
    # The intake's event-time merge (stream/processing/merge.py, InputQuiet): a partition
    # read to its end counts as exhausted after this long without a new message (and the
    # broker's word that nothing more is there); one nothing was read from since the
    # start or the last rebalance, with nothing on the broker past its committed offset,
    # also needs input_idle_seconds of silence counted from the first delivery of any
    # partition.
    input_quiet_seconds: float = Field(0.2, gt=0)
    input_idle_seconds: float = Field(2.0, gt=0)
    # An input event that occurred more than this after its message was published (the
    # record's Kafka timestamp) is dead-lettered (invalid_timestamp): it would move its
    # partition's clock ahead, and every customer's time-caused changes with it.
    max_event_lead_seconds: float = Field(DEFAULT_MAX_EVENT_LEAD_SECONDS, gt=0)
    # Events per batch: outputs of a batch are delivered before its state is written.
    # A batch waits up to batch_seconds to fill: it is a floor on latency, and longer
    # waits measured no faster (BENCHMARKS.md, latency).
    batch_size: int = Field(500, ge=1)
    batch_seconds: float = Field(0.01, gt=0)
    # After a change of rules, how many stored customers each batch of a partition moves
    # to the new rules (stream/processing/rules_change.py): the sweep's share of a batch.
    rules_sweep_customers: int = Field(1000, ge=1)
    # How many due customers a batch of a partition re-evaluates at most when the clock
    # moves: a tick after a pause can make a large share of all customers due at once,
    # and a batch holds its changes, states and profiles until they are sent. The rest
    # fire in the next batches, at once (or as their customers' events come), with the
    # same changes.
    timers_per_batch: int = Field(1000, ge=1)
    # How long the group waits for a silent member before giving its partitions to the
    # others: after a crash, the partitions wait this long (Kafka's default, 45 s).
    session_timeout_seconds: float = Field(45.0, ge=6, le=300)
    # How often the app commits what its agents finished. Under exactly_once each commit
    # ends the running transactions, and only then do read_committed consumers (the
    # customer agent reading segments-events among them) see their records: the interval
    # is a floor on latency, twice over for the worker. Shorter costs throughput: each
    # commit is a round of transaction requests and markers (BENCHMARKS.md, latency:
    # faust's 2.8 s put the worker's p50 at 4.4 s; 1 s at 1.9 s for about 9 % fewer
    # events/s; at 0.25 s the worker fell behind on a slow machine).
    commit_interval_seconds: float = Field(COMMIT_INTERVAL_SECONDS, gt=0, le=60)
    # Standby copies of each table partition, kept by other workers replaying its
    # changelog, so a partition that moves is ready at once. A standby costs its worker
    # about what the owner spends on the state: with two workers, faust's default of one
    # took each worker's CPU to about twice its share and added workers no throughput
    # (BENCHMARKS.md). 0, as in Kafka Streams: a partition that moves is restored from
    # its changelog first.
    standby_replicas: int = Field(0, ge=0)
    # Static group membership (Kafka's group.instance.id), unique per worker process and
    # kept across its restarts (a pod or host name): a worker that restarts within
    # session_timeout_seconds takes its partitions back at once, with no rebalance and no
    # wait for the old process's session to expire (after a crash, that wait is the
    # session timeout). The trade-off: a static member that stops for good keeps its
    # partitions unassigned until its session expires. None: dynamic membership.
    group_instance_id: GroupInstanceId | None = None
    # One memory budget for every RocksDB database of the process: a shared block cache
    # with the memtables charged to it (stream/worker/rocksdb_memory.py), whatever the
    # partitions owned. 0: a cache and write buffers per database (ROCKSDB_OPTIONS in
    # stream/worker/plumbing.py), whose sum grows with the partitions owned.
    rocksdb_memory_mib: int = Field(ROCKSDB_MEMORY_MIB, ge=0)


def state_dir(settings: WorkerSettings | PlaybooksSettings) -> Path:
    """This app's local state: one folder per app id, so apps sharing data_dir never mix."""
    return Path(settings.data_dir) / settings.app_id


def web_token(settings: WorkerSettings | PlaybooksSettings) -> str | None:
    """The bearer token the web endpoints require: the setting, else SEGMENTS_WEB_TOKEN."""
    return settings.web_token or os.environ.get("SEGMENTS_WEB_TOKEN") or None


def load_worker_settings(config_file: str | Path | None, **overrides: Any) -> WorkerSettings:
    """The ``[worker]`` table of ``config_file`` (if any) with non-None ``overrides`` on top."""
    return _load_table(config_file, "worker", WorkerSettings, overrides)


class PlaybooksTopics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # None: the worker's (``[worker.topics] segment_changes``).
    segment_changes: str | None = None
    actions: str = "playbook-actions"
    # A compacted topic of suppressed customer ids (key; a null value lifts it).
    suppression: str | None = None


class PlaybooksSettings(CompactionLag):
    """The ``[playbooks]`` table: the app that turns segment changes into actions."""

    model_config = ConfigDict(extra="forbid")

    app_id: str = "segments-playbooks"
    topics: PlaybooksTopics = Field(default_factory=PlaybooksTopics)
    playbook_file: str | None = None
    suppression_file: str | None = None
    # None: what the playbook file says (policies.backfill.act).
    act_on_backfill: bool | None = None
    partitions: int = Field(4, ge=1, le=1024)
    replication_factor: int = Field(1, ge=1)
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    data_dir: str = ".segments/playbooks"
    web_host: str = "127.0.0.1"
    web_port: int = Field(6067, ge=0, le=65535)
    web_token: str | None = None
    batch_size: int = Field(500, ge=1)
    batch_seconds: float = Field(0.1, gt=0)
    session_timeout_seconds: float = Field(45.0, ge=6, le=300)
    commit_interval_seconds: float = Field(COMMIT_INTERVAL_SECONDS, gt=0, le=60)  # as the worker's
    standby_replicas: int = Field(0, ge=0)  # as the worker's
    group_instance_id: GroupInstanceId | None = None  # as the worker's
    rocksdb_memory_mib: int = Field(ROCKSDB_MEMORY_MIB, ge=0)  # as the worker's


def load_playbooks_settings(config_file: str | Path | None, **overrides: Any) -> PlaybooksSettings:
    """The ``[playbooks]`` table, with the worker's segment-changes topic as its input
    unless it names one."""
    settings = _load_table(config_file, "playbooks", PlaybooksSettings, overrides)
    if settings.topics.segment_changes is None:
        settings.topics.segment_changes = load_worker_settings(config_file).topics.segment_changes
    return settings


def _load_table(config_file: str | Path | None, name: str, model: type[Any], overrides: dict[str, Any]) -> Any:
    table: dict[str, Any] = {}
    if config_file is not None and Path(config_file).is_file():
        try:
            table = tomllib.loads(Path(config_file).read_text(encoding="utf-8")).get(name, {})
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{config_file}: not valid TOML: {error}") from None
    table.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return model.model_validate(table)
    except ValidationError as error:
        raise config_error(str(config_file or "command line"), name, error) from None
