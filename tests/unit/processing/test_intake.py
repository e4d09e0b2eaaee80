"""What the intake accepts: the decoder's verdict, and no event from after its publication."""

from __future__ import annotations

import orjson

from stream.core.events import ErasureRequest, OrderEvent
from stream.core.timeutil import parse_rfc3339_ms
from stream.events import Rejection
from stream.processing.intake import decode_input
from stream.rules import Rules

RULES = Rules()
OCCURRED = "2026-11-28T14:00:00Z"
ORDER = orjson.dumps({"event_id": "e1", "type": "order", "customer_id": "c1", "occurred_at": OCCURRED,
                      "order_id": "o1", "total": 10, "currency": "USD"})


def test_an_event_from_after_its_publication_is_refused_with_the_clock_it_suggests() -> None:
    occurred = parse_rfc3339_ms(OCCURRED)
    # Local time (UTC+2) sent as UTC: two hours ahead of its publication.
    refused = decode_input(ORDER, RULES, published_at_ms=occurred - 2 * 3_600_000)
    assert isinstance(refused, Rejection) and refused.reason == "invalid_timestamp"
    assert "7,200 s after the message was published (2026-11-28T12:00:00.000Z)" in refused.detail
    assert "more than the 300 s allowed (max_event_lead_seconds)" in refused.detail
    # Within the allowed lead, at it, and with no publication time known: taken.
    for published in (occurred - 299_000, occurred - 300_000, occurred + 5_000, None):
        assert isinstance(decode_input(ORDER, RULES, published_at_ms=published), OrderEvent)
    assert isinstance(decode_input(ORDER, RULES, published_at_ms=occurred - 60_000, max_lead_ms=30_000), Rejection)


def test_erasure_requests_are_held_to_it_too_and_other_rejections_come_first() -> None:
    occurred = parse_rfc3339_ms(OCCURRED)
    request = orjson.dumps({"event_id": "x", "type": "erasure", "customer_id": "c1", "occurred_at": OCCURRED})
    assert isinstance(decode_input(request, RULES, published_at_ms=occurred), ErasureRequest)
    assert isinstance(decode_input(request, RULES, published_at_ms=occurred - 3_600_000), Rejection)
    malformed = decode_input(b"{", RULES, published_at_ms=0)
    assert isinstance(malformed, Rejection) and malformed.reason == "malformed_json"
