"""Small builders for typed events in tests (times as RFC 3339 strings or epoch ms)."""

from __future__ import annotations

import itertools

from stream.core import CartEvent, CustomerState, EmailOpenEvent, OrderEvent, advance, apply, parse_rfc3339_ms
from stream.rules import Rules

DEFAULT = Rules()
HOUR = 3_600_000
DAY = 86_400_000
_ids = itertools.count(1)


def ms(t: str | int) -> int:
    return t if isinstance(t, int) else parse_rfc3339_ms(t)


def order(
    t,
    order_id: str = "o1",
    total: float | int = 100,
    status: str = "placed",
    discounted: bool = False,
    refund: float | None = None,
    customer: str = "c1",
    event_id: str | None = None,
) -> OrderEvent:
    return OrderEvent(
        event_id=event_id or f"e{next(_ids)}",
        customer_id=customer,
        occurred_at=ms(t),
        order_id=order_id,
        status=status,  # type: ignore[arg-type]
        total_micros=round(total * 1_000_000),
        discounted=discounted,
        refund_micros=None if refund is None else round(refund * 1_000_000),
    )


def cart(t, action: str = "add", total: float = 50, customer: str = "c1", event_id: str | None = None) -> CartEvent:
    return CartEvent(
        event_id=event_id or f"e{next(_ids)}",
        customer_id=customer,
        occurred_at=ms(t),
        cart_id="k1",
        action=action,  # type: ignore[arg-type]
        cart_total_micros=round(total * 1_000_000),
    )


def email_open(t, privacy: bool = False, customer: str = "c1", event_id: str | None = None) -> EmailOpenEvent:
    return EmailOpenEvent(
        event_id=event_id or f"e{next(_ids)}",
        customer_id=customer,
        occurred_at=ms(t),
        campaign_id=None,
        message_id=None,
        privacy_open=privacy,
    )


def run(events, until=None, rules: Rules = DEFAULT, customer: str = "c1"):
    """Apply events in order (then advance to ``until``); return (state, changes)."""
    st = CustomerState(customer)
    out = []
    for ev in events:
        out.extend(apply(st, ev, rules))
    if until is not None:
        out.extend(advance(st, ms(until), rules))
    return st, out


def tag_changes(changes, tag: str):
    return [(c.at, c.entered) for c in changes if c.kind == "tag" and c.tag == tag]


def seg_changes(changes):
    return [(c.at, c.from_segment, c.to_segment) for c in changes if c.kind == "segment"]
