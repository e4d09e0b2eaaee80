"""Typed input events, as the core sees them.

Raw JSON is decoded and validated by ``stream.events``; by the time an event reaches
the core it is one of these frozen dataclasses, with instants as epoch milliseconds
and money as integer micro-units of the reporting currency (so sums are exact and
stream and batch can never round differently).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

OrderStatus: TypeAlias = Literal["placed", "cancelled", "refunded"]
CartAction: TypeAlias = Literal["add", "remove", "update", "checkout_started", "cleared"]

MICROS_PER_UNIT = 1_000_000
# How far an event's occurred_at may lie after the moment it was published (the worker's
# setting max_event_lead_seconds). An event from the future moves its partition's clock
# ahead, and every customer of the partition then gets its time-caused changes early (a
# producer writing local time as UTC, two hours east of Greenwich, would fire them two
# hours early, all day long).
DEFAULT_MAX_EVENT_LEAD_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class OrderEvent:
    event_id: str
    customer_id: str
    occurred_at: int  # epoch milliseconds
    order_id: str
    status: OrderStatus
    total_micros: int  # in the reporting currency, >= 0
    discounted: bool  # had a non-empty discount_code or discount_total > 0
    refund_micros: int | None  # None: refund the whole remaining value
    timezone: str | None = None
    type: Literal["order"] = "order"


@dataclass(frozen=True, slots=True)
class CartEvent:
    event_id: str
    customer_id: str
    occurred_at: int
    cart_id: str
    action: CartAction
    cart_total_micros: int  # the cart's value after the action, >= 0
    timezone: str | None = None
    type: Literal["cart"] = "cart"


@dataclass(frozen=True, slots=True)
class EmailOpenEvent:
    event_id: str
    customer_id: str
    occurred_at: int
    campaign_id: str | None
    message_id: str | None
    privacy_open: bool  # Apple Mail Privacy Protection machine open: not engagement
    timezone: str | None = None
    type: Literal["email_open"] = "email_open"


@dataclass(frozen=True, slots=True)
class ErasureRequest:
    """Erase the customer (``stream/core/erasure.py``): not applied to a state like the
    events above, but merged with them in time order all the same."""

    event_id: str
    customer_id: str
    occurred_at: int
    type: Literal["erasure"] = "erasure"


Event: TypeAlias = OrderEvent | CartEvent | EmailOpenEvent
# What an input topic carries: an event, or a request to erase a customer.
InputEvent: TypeAlias = Event | ErasureRequest
