"""JSON encoding for the values a batch holds until they are written or sent.

``orjson.dumps`` returns a bytes object that keeps the whole buffer orjson wrote into:
about 8 KiB for a 300-byte record with orjson 3.13 (4 KiB with 3.12; earlier versions
1 KiB; ijl/orjson#483, home-assistant/core#181513). A batch holds such values by the
thousand (states, history entries, change and profile records) until RocksDB and the
producer have copied them, so a tick that made 28,000 changes at once held over 400 MiB
of mostly empty buffers. A copy of the exact size costs about 0.2 us.
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps_compact(value: Any, option: int = 0) -> bytes:
    """``orjson.dumps(value, option=option)``, in a bytes object of its own size."""
    return memoryview(orjson.dumps(value, option=option)).tobytes()
