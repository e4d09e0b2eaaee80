"""A deliberately naive reference implementation of the segmentation spec.

Independent of ``stream.core`` on purpose (only the typed event dataclasses are shared):
it keeps every event it is given and recomputes everything from scratch at ``now``,
straight from the text of ``/work/shared/spec/segmentation.md`` with the default rules
(only the business time zone is a parameter). Slow and simple, so it can be trusted as
the oracle the engine is compared with.
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from stream.core.events import CartEvent, EmailOpenEvent, OrderEvent

WINDOW_DAYS = 730

GRID = {
    5: ["New Customers", "Potential Loyalist", "Potential Loyalist", "Champions", "Champions"],
    4: ["Promising", "Potential Loyalist", "Potential Loyalist", "Loyal Customers", "Champions"],
    3: ["About To Sleep", "Need Attention", "Need Attention", "Loyal Customers", "Loyal Customers"],
    2: ["Hibernating", "About To Sleep", "At Risk", "At Risk", "Can't Lose Them"],
    1: ["Lost", "Hibernating", "At Risk", "Can't Lose Them", "Can't Lose Them"],
}


def iso(ms: int) -> str:
    dt = datetime.fromtimestamp(ms // 1000, ZoneInfo("UTC"))
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def reference_profile(events: list, now: int, tz: str = "UTC") -> dict:
    """Spec §8 profile at ``now`` of one customer, given the events in arrival order."""
    zone = ZoneInfo(tz)

    def day(ms: int):
        return datetime.fromtimestamp(ms / 1000, zone).date()

    def days_between(a, b) -> int:  # b - a in whole calendar days
        return (b - a).days

    # Redeliveries: the first arrival of an event_id is the one that counts.
    seen: set[str] = set()
    unique = []
    for ev in events:
        if ev.event_id in seen:
            continue
        seen.add(ev.event_id)
        unique.append(ev)

    # Orders, keyed by order_id.
    placed: dict[str, OrderEvent] = {}
    cancelled: set[str] = set()
    refunds: dict[str, list[int | None]] = {}
    for ev in unique:
        if isinstance(ev, OrderEvent):
            if ev.status == "placed":
                if ev.order_id not in placed:
                    placed[ev.order_id] = ev
            elif ev.status == "cancelled":
                cancelled.add(ev.order_id)
            else:
                refunds.setdefault(ev.order_id, []).append(ev.refund_micros)

    counted = [o for oid, o in placed.items() if oid not in cancelled]

    def value(o: OrderEvent) -> int:
        rs = refunds.get(o.order_id, [])
        if any(r is None for r in rs):
            return 0
        return max(0, o.total_micros - sum(rs))

    today = day(now)
    out: dict = {"customer_id": None, "as_of": iso(now)}
    metrics = None
    if counted:
        latest = max(o.occurred_at for o in counted)
        earliest = min(o.occurred_at for o in counted)
        in_window = [o for o in counted if days_between(day(o.occurred_at), today) < WINDOW_DAYS]
        monetary = (Decimal(sum(value(o) for o in in_window)) / Decimal(1_000_000)).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )
        metrics = {
            "recency_days": days_between(day(latest), today),
            "frequency": len(in_window),
            "monetary": monetary,
            "orders_lifetime": len(counted),
            "first_order_at": earliest,
            "last_order_at": latest,
            "discounted": sum(1 for o in in_window if o.discounted),
        }
        out.update(
            recency_days=metrics["recency_days"],
            frequency=metrics["frequency"],
            monetary=float(monetary),
            orders_lifetime=metrics["orders_lifetime"],
            first_order_at=iso(earliest),
            last_order_at=iso(latest),
        )
    else:
        out.update(
            recency_days=None,
            frequency=None,
            monetary=None,
            orders_lifetime=None,
            first_order_at=None,
            last_order_at=None,
        )

    segment = None
    r = f = m = None
    tags: list[str] = []
    if metrics is not None:
        rd = metrics["recency_days"]
        r = 5 if rd <= 30 else 4 if rd <= 90 else 3 if rd <= 180 else 2 if rd <= 365 else 1
        fq = metrics["frequency"]
        f = 5 if fq >= 10 else 4 if fq >= 6 else 3 if fq >= 4 else 2 if fq >= 2 else 1
        mo = metrics["monetary"]
        m = 5 if mo >= 1000 else 4 if mo >= 500 else 3 if mo >= 200 else 2 if mo >= 50 else 1
        fm = math.floor((f + m) / 2 + 0.5)
        segment = GRID[r][fm - 1]

        life = metrics["orders_lifetime"]
        if life == 1 and rd >= 60:
            tags.append("one_time_buyer")
        if life >= 2 and rd <= 365:
            tags.append("repeat_purchaser")
        if rd >= 180:
            tags.append("lapsed")
        if m == 5:
            tags.append("high_spender")
        if f >= 3 and m <= 2:
            tags.append("low_spender")
        if fq >= 3 and Decimal(metrics["discounted"]) / Decimal(fq) >= Decimal("0.6"):
            tags.append("coupon_lover")
        if life >= 3:
            from fractions import Fraction

            gap = Fraction(days_between(day(metrics["first_order_at"]), day(metrics["last_order_at"])), life - 1)
            if rd <= 365 and rd > max(Fraction(14), 2 * gap):
                tags.append("overdue")

    # cart_abandoner: the latest cart event (by occurred_at, then arrival).
    carts = [(ev.occurred_at, i, ev) for i, ev in enumerate(unique) if isinstance(ev, CartEvent)]
    if carts:
        _, _, cart = max(carts, key=lambda x: (x[0], x[1]))
        if (
            cart.action != "cleared"
            and cart.cart_total_micros > 0
            and not any(o.occurred_at >= cart.occurred_at for o in counted)
            and 4 * 3600_000 <= now - cart.occurred_at < 7 * 86400_000
        ):
            tags.append("cart_abandoner")

    opens = [ev for ev in unique if isinstance(ev, EmailOpenEvent) and ev.privacy_open is not True]
    if not counted:
        if any(
            days_between(day(ev.occurred_at), today) < 30
            for ev in unique
            if isinstance(ev, CartEvent) or ev in opens
        ):
            tags.append("prospect")
    recent_opens = [ev for ev in opens if days_between(day(ev.occurred_at), today) < 30]
    if len(recent_opens) >= 2 and not any(days_between(day(o.occurred_at), today) < 60 for o in counted):
        tags.append("engaged_non_buyer")

    out.update(r=r, f=f, m=m, segment=segment, tags=sorted(tags))
    return out
