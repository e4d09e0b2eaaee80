"""The worker's internal record format on ``segments-events``.

The intake validates each input once and forwards a compact normalized record (the
typed event's fields, already converted to epoch ms and micro-units), keyed by
customer id, so the customer agent never re-validates. The same topic carries clock
ticks, one per partition, so ticks are ordered with the events they follow, and nudges:
records that only make the partition's agent run a batch (to go on with a sweep after a
change of rules when no event or tick comes).
"""

from __future__ import annotations

import orjson

from stream.core.events import CartEvent, EmailOpenEvent, ErasureRequest, InputEvent, OrderEvent
from stream.core.json_bytes import dumps_compact

_EVENT_TYPES = {"order": OrderEvent, "cart": CartEvent, "email_open": EmailOpenEvent, "erasure": ErasureRequest}
TICK_KEY = b"\x00tick"
NUDGE_KEY = b"\x00nudge"
NUDGE = None  # what decode_record returns for a nudge


def encode_event(event: InputEvent) -> bytes:
    # orjson encodes dataclasses itself, the same fields as dataclasses.asdict at a
    # tenth of the cost.
    return dumps_compact(event)


def encode_tick(now_ms: int) -> bytes:
    return orjson.dumps({"tick": now_ms})


def encode_nudge() -> bytes:
    return b'{"nudge":1}'


def decode_record(value: bytes) -> InputEvent | int | None:
    """A typed event, the instant of a clock tick, or NUDGE."""
    fields = orjson.loads(value)
    if "tick" in fields:
        return int(fields["tick"])
    if "nudge" in fields:
        return NUDGE
    return _EVENT_TYPES[fields["type"]](**fields)
