"""faust's own floor: an agent that takes events in batches, as the worker's agents do, and
does nothing with them. Run by bench_stream_vs_batch.py as a subprocess:

    python bench/faust_floor_app.py TOPIC COUNT BOOTSTRAP [patched|as-shipped]

reads TOPIC from the start under a fresh group until COUNT events arrived, prints
"floor SECONDS" (first event to the COUNT-th) and exits. ``patched`` (the default)
applies the changes to faust's consumer in stream/worker/faust_patches.py first, direct
delivery included (off in the worker for now).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import faust

topic_name, expected, bootstrap = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if (sys.argv[4] if len(sys.argv) > 4 else "patched") == "patched":
    from stream.worker.faust_patches import apply_faust_patches

    apply_faust_patches()
app = faust.App(
    f"floor-{topic_name}-{int(time.time())}", broker=f"kafka://{bootstrap}", store="memory://",
    datadir=tempfile.mkdtemp(prefix="faust-floor-"), web_enabled=False, consumer_auto_offset_reset="earliest",
)
source = app.topic(topic_name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
seen = 0
first_at: float | None = None


@app.agent(source)
async def count(stream: faust.Stream) -> None:
    global seen, first_at
    async for batch in stream.take_events(500, within=0.01):
        first_at = first_at or time.monotonic()
        seen += len(batch)
        if seen >= expected:
            sys.__stdout__.write(f"floor {time.monotonic() - first_at:.3f}\n")
            sys.__stdout__.flush()
            os._exit(0)


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "error"]
    app.main()
