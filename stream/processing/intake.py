"""Decoding an input message under the rules in effect: shared by the worker's intake
and the batch path, so both accept and reject exactly the same events."""

from __future__ import annotations

from stream.core.events import DEFAULT_MAX_EVENT_LEAD_SECONDS, InputEvent
from stream.core.timeutil import rfc3339_ms
from stream.events import Rejection, decode_event
from stream.events.decode import INVALID_TIMESTAMP
from stream.rules import Rules

def decode_input(
    raw: bytes, rules: Rules, *, published_at_ms: int | None = None,
    max_lead_ms: int = round(DEFAULT_MAX_EVENT_LEAD_SECONDS * 1000),
) -> InputEvent | Rejection:
    """``published_at_ms``: when the message was published (its Kafka timestamp; for
    ``segments batch``, when the batch runs); None: not known, not checked."""
    decoded = decode_event(
        raw,
        reporting_currency=rules.reporting_currency,
        currency_rates=rules.currency_rates,
        max_event_bytes=rules.max_event_bytes,
    )
    if isinstance(decoded, Rejection) or published_at_ms is None or decoded.occurred_at <= published_at_ms + max_lead_ms:
        return decoded
    ahead = (decoded.occurred_at - published_at_ms) / 1000
    return Rejection(
        INVALID_TIMESTAMP,
        f"/occurred_at: {rfc3339_ms(decoded.occurred_at)} is {ahead:,.0f} s after the message was published "
        f"({rfc3339_ms(published_at_ms)}), more than the {max_lead_ms / 1000:g} s allowed "
        "(max_event_lead_seconds): a producer clock ahead, or local time sent as UTC?",
    )
