"""One memory budget for every RocksDB database of a process.

faust opens one RocksDB database per table partition (the worker: four tables, so four
databases per partition it owns), and gives each its own block cache and its own
write buffers. Memory then grows with the partitions a worker owns and with time: each
database's write buffers fill before they flush, each cache fills as reads come, and
nothing caps the sum (BENCHMARKS.md, "A long run").

As Kafka Streams' ``BoundedMemoryRocksDBConfig`` does, every database of the process
here shares one LRU block cache of ``rocksdb_memory_mib``, and one write buffer manager
charges their memtables to that same cache, making a database being written to flush
once the memtables near half of it. RocksDB's memory is then about that one number,
whatever the partition count: the cap is soft (writes never stall, so they may run
ahead of the flushes for a while, and pinned level-0 index and filter blocks stay).

:class:`BoundedRocksDBOptions` repeats faust's own ``RocksDBOptions.as_options`` for the
rocksdict driver (faust-streaming 0.15.3), with the shared cache and write buffer
manager in place of a new cache per database; the worker sets no ``ttl`` and no other
RocksDB option, which it would drop.
"""

from __future__ import annotations

from typing import Any

import rocksdict
from faust.stores.rocksdb import RocksDBOptions

# The share of the budget memtables may take before the write buffer manager flushes.
MEMTABLE_SHARE = 0.5


class SharedRocksDBMemory:
    """The block cache and the write buffer manager every database shares."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self.cache = rocksdict.Cache(budget_bytes)
        # allow_stall=False: past the budget RocksDB flushes sooner, it never blocks writes.
        self.write_buffers = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
            int(budget_bytes * MEMTABLE_SHARE), False, self.cache,
        )

    def usage_bytes(self) -> int:
        """Bytes the shared cache holds now (memtables charged to it included)."""
        return self.cache.get_usage()


class BoundedRocksDBOptions(RocksDBOptions):
    """faust's RocksDB options (rocksdict driver) with the shared cache and write buffer
    manager in place of a cache per database (a ``block_cache_size`` given is unused)."""

    def __init__(self, memory: SharedRocksDBMemory, **kwargs: Any) -> None:
        super().__init__(use_rocksdict=True, **kwargs)
        self.memory = memory

    def as_options(self) -> rocksdict.Options:
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_max_open_files(self.max_open_files)
        options.set_write_buffer_size(self.write_buffer_size)
        options.set_target_file_size_base(self.target_file_size_base)
        options.set_max_write_buffer_number(self.max_write_buffer_number)
        options.set_write_buffer_manager(self.memory.write_buffers)
        table_options = rocksdict.BlockBasedOptions()
        table_options.set_bloom_filter(self.bloom_filter_size, block_based=True)
        table_options.set_block_cache(self.memory.cache)
        # Index and filter blocks count against the budget too, the level-0 ones pinned
        # so the newest files never need a disk read for them.
        table_options.set_cache_index_and_filter_blocks(True)
        table_options.set_pin_l0_filter_and_index_blocks_in_cache(True)
        table_options.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table_options)
        return options


def bound_table_memory(table: Any, memory: SharedRocksDBMemory) -> None:
    """Make ``table``'s store open its databases with ``memory``. faust creates a table's
    store on first use; it is created here, as the app is built, before any database is
    opened: the store takes the event loop of the thread building the app (the worker
    builds and runs it in one thread) and makes its backups folder now."""
    store = table.data
    current: RocksDBOptions = store.rocksdb_options
    store.rocksdb_options = BoundedRocksDBOptions(
        memory,
        max_open_files=current.max_open_files,
        write_buffer_size=current.write_buffer_size,
        max_write_buffer_number=current.max_write_buffer_number,
        target_file_size_base=current.target_file_size_base,
        bloom_filter_size=current.bloom_filter_size,
    )
