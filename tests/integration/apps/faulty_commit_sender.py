"""`segments` whose sender's first commit of action offsets goes wrong, for
tests/integration/test_sender_standby.py. COMMIT_FAULT (environment):

- ``stall`` (the default): the commit hangs, as if the process froze between writing
  the actions to its ledger and committing their offsets; the test kills it there.
- ``fail``: the commit raises a request timeout, without a rebalance: the sender keeps
  its partitions, and its consumer's position is past the records.

Prints "STALLED <offsets>" or "FAILED <offsets>" first, so the test knows it happened.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from kafka import KafkaConsumer
from kafka.errors import RequestTimedOutError

from stream.cli.main import main

FAULT = os.environ.get("COMMIT_FAULT", "stall")
commit = KafkaConsumer.commit
faulted: list[bool] = []


def faulty_commit(self: KafkaConsumer, offsets: Any = None, **kwargs: Any) -> Any:
    if offsets and not faulted:
        faulted.append(True)
        where = sorted((tp.partition, offset.offset) for tp, offset in offsets.items())
        if FAULT == "fail":
            print(f"FAILED {where}", flush=True)
            raise RequestTimedOutError("injected by the test")
        print(f"STALLED {where}", flush=True)
        time.sleep(3600)
    return commit(self, offsets, **kwargs)


KafkaConsumer.commit = faulty_commit  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.argv[0] = "segments"
    main()
