"""The cyclic garbage collector, set up for long-running processes that hold many objects.

Why: Python starts a collection every 700 net allocations and a full one every 100 of
those (when enough survived), and each full pass walks every live object. The worker
holds its state cache (tens of thousands of customer states, each a dozen or more
objects) and faust's own machinery, the batch command every customer's state: with the
default thresholds the collector took a quarter to a third of the time of the worker's
batches (BENCHMARKS.md, "The garbage collector"). The core creates no reference
cycles, so collecting rarely frees the same memory, later.
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
