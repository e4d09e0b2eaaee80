"""TableStore's view of faust tables, over real RocksDB partitions (rocksdict, opened by
faust's RocksDBOptions with the worker's options) and no Kafka: for unit tests and
benchmarks of the worker's storage path."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from faust.stores.rocksdb import RocksDBOptions

from stream.worker.plumbing import ROCKSDB_OPTIONS
from stream.worker.rocksdb_memory import BoundedRocksDBOptions, SharedRocksDBMemory
from stream.worker.tables import TableStore

TABLES = ("customers", "timers", "clocks", "recent_changes")


class _Data:
    """What TableStore, read_local and LocalWrites use of a faust RocksDB store: one database."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def _db_for_partition(self, partition: int) -> Any:
        return self.db


class RocksTable:
    def __init__(self, db: Any) -> None:
        self.data = _Data(db)
        self.changelog_topic = SimpleNamespace(get_topic_name=lambda: "changelog")

    def get(self, key: bytes) -> bytes | None:
        return self.data.db.get(key)


class RocksTables:
    """One RocksDB per table and partition under ``folder``."""

    def __init__(self, folder: Path, partitions: int, memory: SharedRocksDBMemory | None = None) -> None:
        """``memory``: the databases share it as the worker's do with rocksdb_memory_mib;
        None: each its own cache and write buffers (ROCKSDB_OPTIONS)."""
        def options() -> RocksDBOptions:
            if memory is None:
                return RocksDBOptions(**dict(ROCKSDB_OPTIONS))
            return BoundedRocksDBOptions(memory, **ROCKSDB_OPTIONS)

        self.tables = {
            (name, partition): RocksTable(options().open(folder / f"{name}-{partition}.db"))
            for name in TABLES for partition in range(partitions)
        }

    def store(self, partition: int) -> TableStore:
        """A fresh TableStore, as the worker makes one per batch."""
        customers, timers, clocks, history = (self.tables[name, partition] for name in TABLES)
        return TableStore(customers, timers, clocks, partition, history)

    def db(self, name: str, partition: int) -> Any:
        return self.tables[name, partition].data.db

    def close(self) -> None:
        for table in self.tables.values():
            table.data.db.close()
