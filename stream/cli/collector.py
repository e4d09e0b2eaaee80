"""The cyclic garbage collector, set up for long-running processes that hold many objects.

Why: Python starts a young collection every 700 net allocations and older ones every 10
of those, and the oldest walks every live object. The worker's event loop allocates
freely (faust's and aiokafka's per-message objects, a batch's states, changes and
records), and the batch command holds every customer's state until the end. Measured
side by side (BENCHMARKS.md, the throughput section, 2026-11-27): the throughput
benchmark's worker at 2,746-2,971 events/s with these thresholds against 2,493-2,643
with the default ones; `segments batch` of 20,000 CDNOW customers 6.3-6.5 s against
7.0-7.1 s. The core creates no reference cycles, so collecting rarely frees the same
memory, later.
"""

from __future__ import annotations

import gc

# A young collection every 50,000 net allocations instead of 700; the older
# generations at 20 and 100 times that.
THRESHOLDS = (50_000, 20, 100)


def settle_collector() -> None:
    """Freeze what exists now (everything imported and built so far lives as long as the
    process: out of every later full pass) and collect less often."""
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
