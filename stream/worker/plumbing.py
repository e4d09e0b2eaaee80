"""faust plumbing both stream apps (the segmentation worker and the playbooks app) share:
credentials, the consumer's fetch wait, the current-event context, local table reads
and writes whose changelog records the agents send themselves, acknowledgements, and
failed deliveries. (Outputs go through stream/worker/record_batches.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from typing import Any, Iterator

import faust
import faust.streams as faust_streams
import rocksdict
from mode import OneForOneSupervisor

from stream.clients import KafkaSettings
from stream.worker.broker_queries import BrokerQueries
from stream.worker.exactly_once_recovery import settle_recovery_tails
from stream.worker.faust_patches import apply_faust_patches, reread_cleared_messages
from stream.worker.recovery_watch import watch_recovery
from stream.worker.rocksdb_memory import SharedRocksDBMemory, bound_table_memory
from stream.worker.settings import CompactionLag, state_dir

# RocksDB options of every table partition (faust's RocksDBOptions keywords). faust's
# defaults (a 2 GiB block cache and three 64 MiB write buffers per database, and the
# worker opens four tables per partition) let memory grow past 1 GB at a million
# customers; these keep each database's share small. See BENCHMARKS.md ("State at
# scale"). With rocksdb_memory_mib (the default) the block cache is the one shared
# cache of stream/worker/rocksdb_memory.py instead, which also caps the write buffers.
ROCKSDB_OPTIONS: dict[str, Any] = {
    "write_buffer_size": 16 * 2**20,
    "max_write_buffer_number": 2,
    "block_cache_size": 32 * 2**20,
}

RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}

# (topic, key, value or None for a deletion)
ChangelogRecord = tuple[str, bytes, bytes | None]


class AgentSupervisor(OneForOneSupervisor):
    """faust's agent supervisor with the restart limit faust asks for: 100 a second.

    mode's token bucket takes the second number (``over``, 1.0) as its capacity, so the
    limit faust sets came out as one restart, then one per 10 ms. A rebalance restarts one
    actor per revoked partition of an ``isolated_partitions`` agent, one after the other;
    two within 10 ms exceeded it and the worker exited (SystemExit(1): seen in the
    fetch-across-rebalance test, at its third rebalance in six seconds)."""

    def __init__(self, *services: Any, **kwargs: Any) -> None:
        super().__init__(*services, **kwargs)
        # A burst of max_restarts, refilled at max_restarts / over a second.
        self._bucket.capacity = self._bucket._tokens = self.max_restarts


def stream_app(settings: Any, kafka: KafkaSettings, partitions: int) -> faust.App:
    """A faust app as both stream apps run: RocksDB tables under ``state_dir(settings)``,
    raw bytes in and out, the web server for the ops endpoints. ``settings``: a
    WorkerSettings or PlaybooksSettings (they share these fields)."""
    apply_faust_patches()
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in kafka.bootstrap_list()],
        broker_credentials=credentials(kafka),
        store="rocksdb://",
        datadir=str(state_dir(settings)),
        processing_guarantee=settings.processing_guarantee,
        topic_partitions=partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        table_standby_replicas=settings.standby_replicas,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_seconds,
        broker_commit_interval=settings.commit_interval_seconds,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        key_serializer="raw",
        value_serializer="raw",
        # An agent holds a batch while its outputs are delivered.
        stream_buffer_maxsize=max(4096, settings.batch_size * 2),
        # The agents hand the producer whole record batches (stream/worker/record_batches.py);
        # faust's 16 KiB would split one agent batch's changes into dozens. Well under
        # the broker's default 1 MB message.max.bytes.
        producer_max_batch_size=256 * 1024,
        # aiokafka rejoins the group when a subscribed topic's metadata changes, but
        # notices only at a refresh (default every 5 minutes): a worker that joined while
        # one of its topics was still missing from the broker's metadata (a changelog
        # faust just created, a broker just started) sat without partitions until then.
        consumer_metadata_max_age_ms=30_000,
        consumer_group_instance_id=settings.group_instance_id,
        agent_supervisor=AgentSupervisor,
    )
    reread_cleared_messages(app)
    watch_recovery(app)
    if settings.processing_guarantee == "exactly_once":
        settle_recovery_tails(app, kafka)
    # Ends as a read-committed consumer sees them: faust_patches.worker_consumer_settings.
    queries = BrokerQueries(kafka, settings.app_id, read_committed=True)
    app.broker_queries = queries  # type: ignore[attr-defined]
    # One per process, shared by every table's databases (state_table).
    memory = SharedRocksDBMemory(settings.rocksdb_memory_mib * 2**20) if settings.rocksdb_memory_mib else None
    app.segments_rocksdb_memory = memory  # type: ignore[attr-defined]

    @app.on_before_shutdown.connect
    async def close_broker_queries(sender: Any, **kwargs: Any) -> None:
        await queries.close()

    return app


# The changelog of a table of a few keys per partition rewritten every batch (partition
# clocks, offsets). Compaction only cleans closed segments, and the broker's default
# closes one a week: an idle wall-clock worker wrote about 9 records a second to its
# clocks changelog (a tick a second per partition), so a week of them, millions of
# records, sat uncompacted, read by every table recovery after a crash and by every
# command reading the records (`segments replay --wait`, `snapshot`, `rules check
# --worker`). Ten-minute segments bound that to minutes of records.
FEW_KEYS_CHANGELOG = {"segment.ms": str(10 * 60 * 1000)}


def state_table(
    app: faust.App, name: str, partitions: int, *, few_keys: bool = False, compaction: CompactionLag | None = None,
) -> Any:
    """A faust table of raw bytes on RocksDB (with ROCKSDB_OPTIONS) and a changelog
    (with FEW_KEYS_CHANGELOG's settings when the table has ``few_keys`` rewritten often;
    ``compaction``'s lag and segment length for one that holds customer data, see
    CompactionLag)."""
    configs = dict(FEW_KEYS_CHANGELOG) if few_keys else {}
    if compaction is not None:
        configs["max.compaction.lag.ms"] = str(compaction.max_compaction_lag_ms)
        configs["segment.ms"] = str(compaction.changelog_segment_ms)
    # A fresh dict each time: faust's store pops keys out of the options it is given.
    table = app.Table(
        name, partitions=partitions, key_type=bytes, value_type=bytes, options=dict(ROCKSDB_OPTIONS),
        extra_topic_configs=configs or None,
    )
    memory = getattr(app, "segments_rocksdb_memory", None)
    if memory is not None:
        bound_table_memory(table, memory)
    return table


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def credentials(kafka: KafkaSettings) -> Any:
    if kafka.uses_sasl:
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password,
            mechanism=kafka.sasl_mechanism or "PLAIN",
            ssl_context=kafka.ssl_context(),
        )
    if kafka.uses_ssl:
        return faust.SSLCredentials(kafka.ssl_context())
    return None


@contextlib.contextmanager
def current_event_of(event: Any) -> Iterator[None]:
    """Make ``event`` faust's current event while a batch is processed.

    faust decides a table write's changelog partition from the current event, and
    ``take_events`` yields with none set. The agents are partition-isolated, so the last
    event of a batch belongs to the partition of every key the batch touches.
    (faust has no public API for this.)
    """
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


def read_local(table: Any, partition: int, key: bytes) -> bytes | None:
    """Read one partition of ``table``'s local store directly: faust's ``table.get``
    goes through its mapping layers, sensors and a partition lookup per key."""
    return table.data._db_for_partition(partition).get(key)


class LocalWrites:
    """Writes to one partition of tables' local stores, applied together (one RocksDB
    write batch per table), and the changelog records for the agent to send.

    The agent sends changelog records itself, like its outputs, and waits for the
    broker's acknowledgement before a batch's offsets can commit: a source offset must
    never be committed while the state it produced is only in a send buffer. (faust's
    ``table[key] = value`` queues the record in its own producer buffer and drops the
    future.) The writes go straight to the partition's RocksDB: faust's own path looks
    the partition up per key, and deletes a key in every partition it cannot place."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self._writes: dict[int, tuple[Any, list[tuple[bytes, bytes | None]]]] = {}  # id(table) ->

    def put(self, table: Any, key: bytes, value: bytes | None) -> None:
        """``value`` None deletes ``key``."""
        self._writes.setdefault(id(table), (table, []))[1].append((key, value))

    def apply(self) -> list[ChangelogRecord]:
        """Write everything queued to the local stores; return the changelog records."""
        records: list[ChangelogRecord] = []
        for table, writes in self._writes.values():
            topic = table.changelog_topic.get_topic_name()
            batch = rocksdict.WriteBatch(raw_mode=True)  # faust opens its stores in raw mode
            for key, value in writes:
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
                records.append((topic, key, value))
            table.data._db_for_partition(self.partition).write(batch)
        self._writes.clear()
        return records


def ack_processed(app: faust.App, events: list[Any]) -> None:
    """Acknowledge events whose effects are delivered.

    What is committed no longer depends on it (see stream/worker/offsets.py), but
    faust's rebalance waits until every message it delivered is acknowledged. faust
    acknowledges a message only when its reference count drops to zero, and a message
    can arrive counted twice around a rebalance, so the agents acknowledge directly;
    ``Consumer.ack`` ignores one already acknowledged.
    """
    consumer = app.consumer
    for event in events:
        consumer.ack(event.message)


def delivered_or_crash(app: faust.App, delivery: Any, what: str) -> bool:
    """For a delivery's done-callback: True if it succeeded. Otherwise the app stops
    (the offsets it carried stay unfinished, so nothing from them on commits, and a
    restart reads them again)."""
    if not delivery.cancelled() and delivery.exception() is None:
        return True
    error = RuntimeError(f"{what}: delivery failed")
    if not delivery.cancelled():
        error.__cause__ = delivery.exception()
    asyncio.ensure_future(app.crash(error))
    return False
