"""A minimal faust app used to prove faust works on the project's broker:
RocksDB table (rocksdict) with a Kafka changelog, and exactly-once through transactions.

Configured from the environment so a test can run it as a real process:
SMOKE_APP_ID, SMOKE_IN, SMOKE_OUT, SMOKE_DATA_DIR, KAFKA_BOOTSTRAP_SERVERS.
"""

import os

import faust

app = faust.App(
    os.environ["SMOKE_APP_ID"],
    broker=f"kafka://{os.environ['KAFKA_BOOTSTRAP_SERVERS']}",
    store="rocksdb://",
    datadir=os.environ["SMOKE_DATA_DIR"],
    processing_guarantee="exactly_once",
    topic_replication_factor=1,
    topic_partitions=2,
    web_enabled=False,
)

source = app.topic(os.environ["SMOKE_IN"], key_type=bytes, value_type=bytes, value_serializer="raw", key_serializer="raw")
sink = app.topic(os.environ["SMOKE_OUT"], key_type=bytes, value_type=bytes, value_serializer="raw", key_serializer="raw")
counts = app.Table("counts", default=int, partitions=2)


@app.agent(source)
async def count(stream):
    async for key, value in stream.items():
        counts[key] += 1
        await sink.send(key=key, value=value + b":" + str(counts[key]).encode())
