"""The segmentation core: pure Python, no Kafka or faust imports.

Everything here is deterministic: the same events in the same order give the same
state and the same changes, which is what lets the stream worker and the batch
command agree change for change.

Public API::

    CustomerState(customer_id)              # compact per-customer state
    state.to_bytes() / CustomerState.from_bytes(b)
    apply(state, event, rules) -> list[Change]
    advance(state, now, rules) -> list[Change]
    adopt_rules(state, at, rules) -> list[Change]   # a rules change, from instant at on
    erase(state, request, rules) -> (stub, list[Change])  # an erasure request
    next_due(state, rules) -> int | None
    look_ahead(state, rules)                # next_due skips candidates that change nothing
    profile(state, now, rules) -> dict
    Change.to_json_dict() -> dict

Modules: ``timeutil`` (business days), ``state`` (layout, sizes), ``metrics``, ``scoring``,
``tags``, ``evaluation``, ``timers`` (next_due), ``engine`` (apply/advance), ``changes``,
``profile``, ``erasure``; and two for speed that change no result: ``params`` (the rules' numbers as
plain ints, once per ``Rules``) and ``summary`` (per-state view of the order records,
built once per change of them: sorted order days with suffix sums, sorted time
candidates). Benchmark: ``bench/bench_core.py``.
"""

from .changes import RULES, TIME, Cause, Change
from .engine import adopt_rules, advance, apply, look_ahead, new_state
from .erasure import erase
from .evaluation import Evaluation, evaluate
from .events import CartEvent, EmailOpenEvent, ErasureRequest, Event, InputEvent, OrderEvent
from .profile import profile
from .state import CustomerState
from .timers import next_due
from .timeutil import day_of, day_start_ms, parse_rfc3339_ms, rfc3339_ms

__all__ = [
    "RULES",
    "TIME",
    "CartEvent",
    "Cause",
    "Change",
    "CustomerState",
    "EmailOpenEvent",
    "ErasureRequest",
    "Evaluation",
    "Event",
    "InputEvent",
    "OrderEvent",
    "adopt_rules",
    "advance",
    "apply",
    "day_of",
    "day_start_ms",
    "erase",
    "evaluate",
    "look_ahead",
    "new_state",
    "next_due",
    "parse_rfc3339_ms",
    "profile",
    "rfc3339_ms",
]
