"""A few hours of "live" traffic ending now: recent orders, repeat orders with a coupon,
carts left open and email opens of prospects. Its segment changes fall inside the
playbooks' backfill horizon, so they trigger actions (the demo's emails; the playbooks
tests)."""

from __future__ import annotations

from typing import Any

from stream.core.timeutil import rfc3339_ms

HOUR_MS = 3_600_000
ZONES = ("Europe/Paris", "America/New_York", None)


def live_events(now_ms: int, customers: int = 40, prefix: str = "pb", erased: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    """Events of ``customers`` buyers (every 5th leaves a cart open, every 2nd orders again
    with a discount) and of 8 prospects who open emails, in time order, all before now;
    and an erasure request an hour ago for each buyer numbered in ``erased``."""
    events: list[dict[str, Any]] = []

    def add(kind: str, customer: str, at: int, **fields: Any) -> None:
        events.append({"event_id": f"{prefix}-e{len(events)}", "type": kind, "customer_id": customer, "occurred_at": rfc3339_ms(at), **fields})

    for n in range(customers):
        customer = f"{prefix}-{n:03d}"
        zone = ZONES[n % len(ZONES)]
        extra = {"timezone": zone} if zone else {}
        add("order", customer, now_ms - 30 * HOUR_MS + n * 60_000, order_id=f"{prefix}-o{n}a", status="placed",
            total=40 + n, currency="USD", **extra)
        if n % 2 == 0:
            add("order", customer, now_ms - 20 * HOUR_MS + n * 60_000, order_id=f"{prefix}-o{n}b", status="placed",
                total=90, currency="USD", discount_code="SAVE10")
        if n % 5 == 0:
            add("cart", customer, now_ms - 10 * HOUR_MS + n * 60_000, cart_id=f"{prefix}-k{n}", action="add", cart_total=55)
    for n in erased:
        add("erasure", f"{prefix}-{n:03d}", now_ms - HOUR_MS)
    for n in range(customers, customers + 8):
        add("email_open", f"{prefix}-{n:03d}", now_ms - 5 * HOUR_MS, campaign_id="spring", message_id=f"{prefix}-m{n}",
            apple_privacy_open=False)
    events.sort(key=lambda e: e["occurred_at"])
    return events
