"""The stream worker: faust agents, topics and tables around ``stream.processing``.

``intake``: input topics -> validated, normalized events keyed by customer (or the DLQ).
``customers``: per partition, events and clock ticks -> the processor -> segment changes
and profiles; state in RocksDB tables with Kafka changelogs.
"""
