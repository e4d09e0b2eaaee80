"""A faust app with the worker's patches (stream/worker/faust_patches.py), a tiny stream
buffer and a slow agent, for tests/integration/test_faust_patches.py.

Environment: DELIVERY_APP_ID, DELIVERY_IN (topic), DELIVERY_EXPECTED (messages),
DELIVERY_RESULT (a JSON file written once they all arrived), DELIVERY_DATA_DIR,
KAFKA_BOOTSTRAP_SERVERS; DELIVERY_PATCHED=0 runs faust as shipped.
"""

from __future__ import annotations

import asyncio
import json
import os

import faust
from faust.transport.consumer import Consumer

if os.environ.get("DELIVERY_PATCHED", "1") == "1":
    from stream.worker.faust_patches import apply_faust_patches

    apply_faust_patches()

BUFFER = 64
expected = int(os.environ["DELIVERY_EXPECTED"])
paused: list[int] = []
on_buffer_full = Consumer.on_buffer_full


def count_pauses(self: Consumer, tp: object) -> None:
    paused.append(getattr(tp, "partition", -1))
    on_buffer_full(self, tp)


Consumer.on_buffer_full = count_pauses  # type: ignore[method-assign]

app = faust.App(
    os.environ["DELIVERY_APP_ID"],
    broker=f"kafka://{os.environ['KAFKA_BOOTSTRAP_SERVERS']}",
    store="memory://",
    datadir=os.environ["DELIVERY_DATA_DIR"],
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
    stream_buffer_maxsize=BUFFER,
)
source = app.topic(os.environ["DELIVERY_IN"], key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
seen: list[tuple[int, int, str]] = []


@app.agent(source)
async def slow(stream: faust.Stream) -> None:
    async for batch in stream.take_events(16, within=0.01):
        seen.extend((event.message.partition, event.message.offset, event.value.decode()) for event in batch)
        await asyncio.sleep(0.002)  # slower than delivery: the buffer fills
        if len(seen) >= expected:
            with open(os.environ["DELIVERY_RESULT"], "w") as handle:
                json.dump({"seen": seen, "paused": paused}, handle)
            os._exit(0)
