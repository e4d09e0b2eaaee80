"""Rough per-event cost of :func:`decode_event`: ``python -m stream.events.bench [N]``.

Times typical order, cart and email_open messages and a rejected one, with the
accept-only fast check on (the default) and off (jsonschema validates every event).
"""

from __future__ import annotations

import sys
import time

import orjson

from . import decode


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 20_000
    base = {"event_id": "evt-0001", "customer_id": "cust-42", "occurred_at": "2024-03-01T12:30:00Z"}
    cases = {
        "order": {**base, "type": "order", "order_id": "ord-9001", "total": 129.95,
                  "currency": "USD", "discount_code": "SPRING10",
                  "items": [{"sku": "A", "qty": 1}] * 3},
        "order EUR->USD": {**base, "type": "order", "order_id": "ord-9002", "total": 80.5,
                           "currency": "EUR", "timezone": "Europe/Paris"},
        "cart": {**base, "type": "cart", "cart_id": "cart-7", "action": "add", "cart_total": 64.5},
        "email_open": {**base, "type": "email_open", "campaign_id": "spring", "message_id": "m-1"},
        "rejected (schema)": {**base, "type": "order", "order_id": "o", "total": -1, "currency": "USD"},
    }
    old = decode.FAST_PATH
    try:
        for fast in (True, False):
            decode.FAST_PATH = fast
            for name, obj in cases.items():
                raw = orjson.dumps(obj)
                decode.decode_event(raw, currency_rates={"EUR": 1.08})
                start = time.perf_counter()
                for _ in range(n):
                    decode.decode_event(raw, currency_rates={"EUR": 1.08})
                per = (time.perf_counter() - start) / n * 1e6
                print(f"fast_path={fast!s:<5}  {name:<18} {per:7.1f} us/event  ({len(raw)} bytes)")
    finally:
        decode.FAST_PATH = old


if __name__ == "__main__":
    main()
