"""Decoding and validating raw input bytes into typed events (pure Python, no Kafka).

- :func:`decode_event` bytes -> ``OrderEvent | CartEvent | EmailOpenEvent`` or :class:`Rejection`
- :func:`encode_dead_letter` a rejected message -> dead-letter record bytes
- :func:`load_schema` the project's JSON Schemas (inputs and outputs)

The reason codes are documented in :mod:`stream.events.decode` and listed in
:data:`REASONS` (and in ``dead_letter.schema.json``).
"""

from .decode import (
    DEFAULT_MAX_EVENT_BYTES,
    REASONS,
    Rejection,
    decode_event,
    encode_dead_letter,
    format_instant,
    parse_instant,
)
from .schemas import load_schema, validator

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "REASONS",
    "Rejection",
    "decode_event",
    "encode_dead_letter",
    "format_instant",
    "load_schema",
    "parse_instant",
    "validator",
]
