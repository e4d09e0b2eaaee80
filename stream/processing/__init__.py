"""The processor: one partition's worth of customers, driven by events and clock ticks.

Like Kafka Streams' split between a processor and its state store: the
:class:`PartitionProcessor` decides what happens (pure Python, calling ``stream.core``),
and a :class:`ProcessorStore` keeps customer states, the timer index and the partition
clock. The stream worker gives it a store over faust tables (RocksDB + changelogs); the
batch command gives it :class:`MemoryStore`. Same processor, same results.
"""

from stream.processing.processor import PartitionProcessor, StepResult
from stream.processing.store import MemoryStore, ProcessorStore

__all__ = ["MemoryStore", "PartitionProcessor", "ProcessorStore", "StepResult"]
