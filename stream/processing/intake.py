"""Decoding an input message under the rules in effect: shared by the worker's intake
and the batch path, so both accept and reject exactly the same events."""

from __future__ import annotations

from stream.core.events import InputEvent
from stream.events import Rejection, decode_event
from stream.rules import Rules


def decode_input(raw: bytes, rules: Rules) -> InputEvent | Rejection:
    return decode_event(
        raw,
        reporting_currency=rules.reporting_currency,
        currency_rates=rules.currency_rates,
        max_event_bytes=rules.max_event_bytes,
    )
