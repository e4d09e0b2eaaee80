"""`segments` whose sender stalls in its first commit of action offsets, as if the
process froze between writing the actions to its ledger and committing their offsets:
the test kills it there. For tests/integration/test_sender_standby.py.

Prints "STALLED <offsets>" before stalling, so the test knows the moment has come.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from kafka import KafkaConsumer

from stream.cli.main import main

commit = KafkaConsumer.commit


def stalled_commit(self: KafkaConsumer, offsets: Any = None, **kwargs: Any) -> Any:
    if offsets:
        print(f"STALLED {sorted((tp.partition, offset.offset) for tp, offset in offsets.items())}", flush=True)
        time.sleep(3600)
    return commit(self, offsets, **kwargs)


KafkaConsumer.commit = stalled_commit  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.argv[0] = "segments"
    main()
