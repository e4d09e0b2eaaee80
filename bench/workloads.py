"""Input workloads for the benchmarks.

``cdnow_history``: the first N CDNOW customers' orders, time-ordered: 18 months of a
shop compressed into one replay, so most of the work is time-caused changes (each
customer slides through the grid as months pass).

``live_burst``: what a live shop sends in one busy hour: orders, cart activity and email
opens of customers drawn at random from a pool, with ``occurred_at`` rising evenly
through the hour from ``start``. Event time moves by an hour, so the clock causes
few changes; nearly all the work is the events themselves. Deterministic for a seed.
"""

from __future__ import annotations

import datetime as _dt
import random

HOUR_MS = 3_600_000
# Where the benchmarks put a live hour: the day after the CDNOW history ends.
LIVE_START = "1998-07-01T00:00:00Z"


def _iso(ms: int) -> str:
    return _dt.datetime.fromtimestamp(ms / 1000, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def live_burst(customer_ids: list[str], count: int, start_ms: int, *, seconds: int = 3600, seed: int = 7) -> list[dict]:
    """``count`` events (about 25 % orders, 45 % cart events, 30 % email opens) of the
    given customers, ``occurred_at`` from ``start_ms`` over ``seconds``."""
    rng = random.Random(seed)
    open_carts: dict[str, tuple[str, float]] = {}
    events: list[dict] = []
    for number in range(count):
        customer_id = rng.choice(customer_ids)
        at = _iso(start_ms + number * seconds * 1000 // count)
        base = {"event_id": f"live-{number:08d}", "customer_id": customer_id, "occurred_at": at}
        kind = rng.random()
        if kind < 0.25:
            cart = open_carts.pop(customer_id, None)
            total = cart[1] if cart else round(rng.uniform(5, 250), 2)
            order = {**base, "type": "order", "order_id": f"live-order-{number}", "status": "placed",
                     "total": total, "currency": "USD"}
            if rng.random() < 0.3:
                order["discount_code"] = rng.choice(("WELCOME10", "SPRING", "VIP20"))
            events.append(order)
        elif kind < 0.70:
            cart_id, total = open_carts.get(customer_id, (f"live-cart-{number}", 0.0))
            total = round(total + rng.uniform(5, 80), 2)
            open_carts[customer_id] = (cart_id, total)
            action = "add" if total < 100 else rng.choice(("update", "checkout_started"))
            events.append({**base, "type": "cart", "cart_id": cart_id, "action": action, "cart_total": total})
        else:
            campaign = f"campaign-live-{number % 5}"
            events.append({**base, "type": "email_open", "campaign_id": campaign,
                           "message_id": f"{campaign}-{customer_id}", "apple_privacy_open": rng.random() < 0.15})
    return events
