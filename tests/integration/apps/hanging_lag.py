"""`segments` whose `lag` sampling hangs from its third sample on, as a Kafka call that
never returns would: for tests/integration/test_lag.py (Ctrl-C must still end --watch)."""

from __future__ import annotations

import sys
import time
from typing import Any

from stream.cli.main import main
from stream.clients import lag

snapshot = lag.GroupOffsetsReader.snapshot
calls: list[int] = []


def hanging_snapshot(self: lag.GroupOffsetsReader, *args: Any, **kwargs: Any) -> Any:
    calls.append(1)
    if len(calls) >= 3:
        time.sleep(3600)
    return snapshot(self, *args, **kwargs)


lag.GroupOffsetsReader.snapshot = hanging_snapshot  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.argv[0] = "segments"
    main()
