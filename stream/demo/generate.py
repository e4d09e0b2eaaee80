"""Realistic shop behaviour around a history of orders, deterministically.

:func:`generate_behaviour` takes order events (as :func:`stream.demo.cdnow.cdnow_orders`
yields them) and returns one list of input events in *file order*, i.e. the order a
replay publishes them in. On top of the orders it adds:

- discounts: ~30 % of orders carry a ``discount_code`` (some also a ``discount_total``,
  a few only a ``discount_total``); ~15 % of customers are coupon-heavy (~85 % of their
  orders discounted), which is what ``coupon_lover`` needs;
- cancellations (~2 % of orders, within a day), partial refunds (~3 %, days later, with
  ``refund_amount``) and a few full refunds (no ``refund_amount``);
- carts: a cart before ~40 % of orders (``add`` 1-3 h before, sometimes ``update`` and
  ``checkout_started``), abandoned carts at random times (some with a ``remove``, some
  later ``cleared``), and non-buying customers (``prospect-*``) with carts and opens;
- weekly email campaigns; opens by buyers and by non-buyers, ~15 % of them machine opens
  (``apple_privacy_open: true``);
- a ``timezone`` (IANA name) on the events of ~25 % of the customers;
- redeliveries: ``redelivery_share`` of the events again, same ``event_id`` and content,
  1-4 positions after the original;
- late events: ``late_share`` of the events published later than their ``occurred_at``
  says (``occurred_at`` unchanged), right after a later event of the same customer and
  type, typically a few hundred positions later;
- erasure requests (``type: "erasure"``) for ``erasure_share`` of the customers, at a
  random instant of the history (some before the customer's first event, some followed
  by the customer coming back), drawn from a random stream of their own so that the
  other events are the same with or without them.

Everything else is time-ordered (stable: ties keep their generation order).

Why late events go right after a later event of the same customer *and type*: the
worker's intake merges its input partitions by ``occurred_at`` (stream.processing.merge),
each partition a FIFO queue. A customer's events of one type share a topic and, keyed by
customer, a partition. A late event placed right behind such an event in the file is
behind it in its queue too, and the merge releases it right after it (it is older than
every other queue head), which is exactly its place in the file. So the merged order is
the file order and, per customer, stream and batch see the same sequence. Placed anywhere
else, the merge could release it before events of other types that precede it in the file,
and a late event's effect depends on what came before it. Redeliveries change nothing, so
their exact position does not matter.

Events are plain dicts, ready for :func:`stream.demo.cdnow.write_jsonl`; every one is
valid input (``stream.events.decode_event`` accepts it). The same input and ``seed`` give
the same output; no global random state is used.
"""

from __future__ import annotations

import bisect
import datetime as _dt
import functools
import itertools
import random
from dataclasses import dataclass
from typing import Any

from stream.events import parse_instant

__all__ = ["generate_behaviour"]

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY

TIMEZONES = (
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
    "America/Sao_Paulo", "Europe/London", "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney",
)
DISCOUNT_CODES = ("WELCOME10", "SPRING15", "SUMMER20", "VIP25", "FREESHIP", "BUNDLE5")

# Shares (per order) of what follows an order.
CANCEL_SHARE = 0.02
PARTIAL_REFUND_SHARE = 0.03
FULL_REFUND_SHARE = 0.005
CART_BEFORE_ORDER_SHARE = 0.40
# Shares per customer.
COUPON_HEAVY_SHARE = 0.15
TIMEZONE_SHARE = 0.25
ABANDONER_SHARE = 0.35
SUBSCRIBED_SHARE = 0.5
ENGAGED_SHARE = 0.3
NON_BUYER_SHARE = 0.1  # non-buying customers, relative to the customers with behaviour
PRIVACY_OPEN_SHARE = 0.15
# Late events go after a same-customer, same-type event at most this many positions on.
LATE_SPAN = 400
LATE_SPAN_FALLBACK = 3000


@dataclass
class _Customer:
    customer_id: str
    coupon_rate: float
    open_rate: float
    subscribed: bool
    timezone: str | None
    buyer: bool


_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()


@functools.lru_cache(maxsize=4096)
def _date_text(day: int) -> str:
    return _dt.date.fromordinal(_EPOCH_ORDINAL + day).isoformat()


def _iso(ms: int) -> str:
    """Epoch ms -> ``YYYY-MM-DDTHH:MM:SSZ`` (whole seconds)."""
    day, rest = divmod(ms // 1000, 86_400)
    hours, rest = divmod(rest, 3600)
    return f"{_date_text(day)}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}Z"


def _money(value: float) -> float:
    return round(value, 2)


class _Builder:
    """Collects events with their instant and a tie-breaking sequence number."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.rows: list[tuple[int, int, dict]] = []
        self._seq = 0
        self._ids = 0

    def event_id(self) -> str:
        self._ids += 1
        return f"gen-{self._ids:08d}"

    def add(self, at: int, event: dict) -> None:
        self._seq += 1
        self.rows.append((at, self._seq, event))

    def new(self, at: int, customer: _Customer, kind: str, **fields: Any) -> None:
        event = {"event_id": self.event_id(), "type": kind, "customer_id": customer.customer_id, "occurred_at": _iso(at)}
        event.update(fields)
        if customer.timezone is not None:
            event["timezone"] = customer.timezone
        self.add(at, event)


def generate_behaviour(
    orders: list[dict],
    *,
    seed: int = 7,
    customer_share: float = 1.0,
    late_share: float = 0.01,
    redelivery_share: float = 0.01,
    erasure_share: float = 0.0,
) -> list[dict]:
    """Orders plus generated behaviour, in file order (see the module docstring).

    ``customer_share`` < 1 generates behaviour (discounts, cancellations, refunds, carts,
    opens, time zones) for that share of the customers only, and proportionally fewer
    non-buyers; the other customers' orders pass through unchanged (still subject to
    redelivery and lateness). The input dicts are not modified.
    """
    if not 0.0 <= customer_share <= 1.0:
        raise ValueError("customer_share must be within [0, 1]")
    rng = random.Random(seed)
    timed = sorted(((_instant(order), index, order) for index, order in enumerate(orders)), key=lambda row: row[:2])
    if not timed:
        return []
    start, end = timed[0][0], timed[-1][0]

    # Customers in order of first appearance (deterministic), behaviour for a sample.
    first_seen: dict[str, None] = {}
    for _, _, order in timed:
        first_seen.setdefault(order["customer_id"], None)
    selected = {cid for cid in first_seen if rng.random() < customer_share}
    customers: dict[str, _Customer] = {}
    for cid in first_seen:
        if cid in selected:
            customers[cid] = _new_customer(rng, cid, buyer=True)
    non_buyers = [
        _new_customer(rng, f"prospect-{i + 1:05d}", buyer=False)
        for i in range(max(4, round(NON_BUYER_SHARE * len(selected))) if selected else 0)
    ]

    builder = _Builder(rng)
    for at, _, order in timed:
        customer = customers.get(order["customer_id"])
        if customer is None:
            builder.add(at, dict(order))
            continue
        _order_with_behaviour(builder, customer, at, order, end)
    for customer in list(customers.values()) + non_buyers:
        _abandoned_carts(builder, customer, start, end)
    _email_campaigns(builder, list(customers.values()) + non_buyers, start, end)

    builder.rows.sort(key=lambda row: row[:2])
    events = [event for _, _, event in builder.rows]
    instants = [at for at, _, _ in builder.rows]
    events = _make_late(rng, events, instants, late_share)
    events = _redeliver(rng, events, redelivery_share)
    customer_ids = [*first_seen, *(customer.customer_id for customer in non_buyers)]
    return _with_erasures(events, customer_ids, start, end, erasure_share, seed)


def _instant(event: dict) -> int:
    at = parse_instant(event["occurred_at"])
    if at is None:
        raise ValueError(f"event {event.get('event_id')!r}: occurred_at {event['occurred_at']!r} is not RFC 3339")
    return at


def _new_customer(rng: random.Random, customer_id: str, *, buyer: bool) -> _Customer:
    heavy = rng.random() < COUPON_HEAVY_SHARE
    engaged = rng.random() < (0.7 if not buyer else ENGAGED_SHARE)
    return _Customer(
        customer_id=customer_id,
        coupon_rate=0.85 if heavy else 0.2,
        open_rate=(0.4 if engaged else 0.03) if buyer else (0.3 if engaged else 0.05),
        subscribed=not buyer or rng.random() < SUBSCRIBED_SHARE,
        timezone=rng.choice(TIMEZONES) if rng.random() < TIMEZONE_SHARE else None,
        buyer=buyer,
    )


def _order_with_behaviour(builder: _Builder, customer: _Customer, at: int, order: dict, end: int) -> None:
    rng = builder.rng
    total = float(order.get("total", 0))
    placed = dict(order)
    if rng.random() < customer.coupon_rate:
        style = rng.random()
        if style < 0.1:
            placed["discount_total"] = _money(max(0.5, total * rng.uniform(0.05, 0.2)))
        else:
            placed["discount_code"] = rng.choice(DISCOUNT_CODES)
            if style < 0.55 and total > 0:
                placed["discount_total"] = _money(max(0.01, total * rng.uniform(0.05, 0.25)))
    elif rng.random() < 0.2:
        placed["discount_code"] = None  # explicitly none
    if customer.timezone is not None:
        placed["timezone"] = customer.timezone

    if rng.random() < CART_BEFORE_ORDER_SHARE:
        cart_id = f"cart-{builder.event_id()}"
        added = at - rng.randint(HOUR, 3 * HOUR)
        first = _money(total * rng.uniform(0.4, 1.0)) if total > 0 else 0.0
        builder.new(added, customer, "cart", cart_id=cart_id, action="add", cart_total=first, items=_items(rng))
        if rng.random() < 0.35:
            builder.new(rng.randint(added + MINUTE, at - 35 * MINUTE), customer, "cart", cart_id=cart_id,
                        action="update", cart_total=_money(total))
        if rng.random() < 0.6:
            builder.new(at - rng.randint(2 * MINUTE, 30 * MINUTE), customer, "cart", cart_id=cart_id,
                        action="checkout_started", cart_total=_money(total))
    builder.add(at, placed)

    base = {key: order[key] for key in ("order_id", "total", "currency")}
    roll = rng.random()
    if roll < CANCEL_SHARE:
        when = at + rng.randint(10 * MINUTE, 23 * HOUR)
        builder.new(when, customer, "order", status="cancelled", **base)
    elif roll < CANCEL_SHARE + PARTIAL_REFUND_SHARE and total > 0:
        when = at + rng.randint(2 * DAY, 20 * DAY)
        if when <= end:
            builder.new(when, customer, "order", status="refunded", refund_amount=_money(total * rng.uniform(0.1, 0.6)), **base)
    elif roll < CANCEL_SHARE + PARTIAL_REFUND_SHARE + FULL_REFUND_SHARE:
        when = at + rng.randint(1 * DAY, 30 * DAY)
        if when <= end:
            builder.new(when, customer, "order", status="refunded", **base)


def _items(rng: random.Random) -> list[dict]:
    return [{"sku": f"CD-{rng.randint(1, 5000):05d}", "qty": rng.randint(1, 3)} for _ in range(rng.randint(1, 3))]


def _abandoned_carts(builder: _Builder, customer: _Customer, start: int, end: int) -> None:
    rng = builder.rng
    share = 0.8 if not customer.buyer else ABANDONER_SHARE
    if rng.random() >= share:
        return
    for _ in range(rng.randint(1, 3)):
        cart_id = f"cart-{builder.event_id()}"
        at = rng.randint(start, end)
        total = _money(rng.uniform(8, 150))
        builder.new(at, customer, "cart", cart_id=cart_id, action="add", cart_total=total, items=_items(rng))
        if rng.random() < 0.4:
            at += rng.randint(MINUTE, 40 * MINUTE)
            total = _money(total + rng.uniform(5, 60))
            builder.new(at, customer, "cart", cart_id=cart_id, action="update", cart_total=total)
        if rng.random() < 0.2:
            at += rng.randint(MINUTE, 20 * MINUTE)
            total = _money(total * rng.uniform(0.3, 0.8)) if rng.random() < 0.7 else 0.0
            builder.new(at, customer, "cart", cart_id=cart_id, action="remove", cart_total=total)
        if rng.random() < 0.4:
            at += rng.randint(HOUR, 10 * DAY)
            if at <= end:
                builder.new(at, customer, "cart", cart_id=cart_id, action="cleared", cart_total=0)


def _email_campaigns(builder: _Builder, audience: list[_Customer], start: int, end: int) -> None:
    """A campaign every week (Tuesdays 14:00 UTC) to the subscribed customers."""
    rng = builder.rng
    subscribed = [customer for customer in audience if customer.subscribed]
    day0 = start - start % DAY
    weekday = _dt.datetime.fromtimestamp(day0 / 1000, _dt.timezone.utc).weekday()
    sent = day0 + ((1 - weekday) % 7) * DAY + 14 * HOUR  # first Tuesday
    week = 0
    while sent <= end:
        week += 1
        campaign = f"campaign-{week:03d}"
        for customer in subscribed:
            if rng.random() >= customer.open_rate:
                continue
            opened = sent + min(5 * DAY, int(rng.expovariate(1 / (8 * HOUR))))
            if opened > end:
                continue
            fields: dict[str, Any] = {"campaign_id": campaign, "message_id": f"{campaign}-{customer.customer_id}"}
            machine = rng.random() < PRIVACY_OPEN_SHARE
            if machine or rng.random() < 0.7:
                fields["apple_privacy_open"] = machine
            builder.new(opened, customer, "email_open", **fields)
        sent += WEEK


def _with_erasures(events: list[dict], customer_ids: list[str], start: int, end: int, share: float, seed: int) -> list[dict]:
    """Each erasure goes before the first event that occurred after it: where the intake's
    merge releases it (its own topic), so the merged order stays the file order."""
    rng = random.Random(f"erasures-{seed}")
    erasures = []
    for customer_id in customer_ids:
        if rng.random() < share:
            at = rng.randrange(start, end)
            erasures.append((at, {"event_id": f"erase-{customer_id}", "type": "erasure", "customer_id": customer_id,
                                  "occurred_at": _iso(at)}))
    if not erasures:
        return events
    latest_so_far = list(itertools.accumulate((_instant(event) for event in events), max))
    out = list(events)
    for at, erasure in sorted(erasures, key=lambda item: item[0], reverse=True):
        out.insert(bisect.bisect_right(latest_so_far, at), erasure)
    return out


def _make_late(rng: random.Random, events: list[dict], instants: list[int], share: float) -> list[dict]:
    """Move ``share`` of the events right after a later event of the same customer and type."""
    wanted = round(share * len(events))
    if wanted <= 0:
        return events
    positions: dict[tuple[str, str], list[int]] = {}
    for position, event in enumerate(events):
        positions.setdefault((event["customer_id"], event["type"]), []).append(position)
    moved: set[int] = set()
    hosts: dict[int, int] = {}  # host position -> the late event placed right after it
    candidates = list(range(len(events)))
    rng.shuffle(candidates)
    for position in candidates:
        if len(hosts) >= wanted:
            break
        if position in hosts:
            continue
        same = positions[(events[position]["customer_id"], events[position]["type"])]
        later = []
        for p in same[bisect.bisect_right(same, position):]:
            if p - position > LATE_SPAN_FALLBACK:
                break
            if instants[p] > instants[position] and p not in moved and p not in hosts:
                later.append(p)
        if not later:
            continue
        near = [p for p in later if p - position <= LATE_SPAN]
        if near:
            host = rng.choice(near)
        elif later[0] - position <= LATE_SPAN_FALLBACK:
            host = later[0]
        else:
            continue
        moved.add(position)
        hosts[host] = position
    out: list[dict] = []
    for position, event in enumerate(events):
        if position in moved:
            continue
        out.append(event)
        if position in hosts:
            out.append(events[hosts[position]])
    return out


def _redeliver(rng: random.Random, events: list[dict], share: float) -> list[dict]:
    """Publish ``share`` of the events a second time, 1-4 positions after the original."""
    wanted = min(len(events), round(share * len(events)))
    if wanted <= 0:
        return events
    again: dict[int, list[dict]] = {}
    for position in sorted(rng.sample(range(len(events)), wanted)):
        after = min(len(events) - 1, position + rng.randint(1, 4))
        again.setdefault(after, []).append(dict(events[position]))
    out: list[dict] = []
    for position, event in enumerate(events):
        out.append(event)
        out.extend(again.get(position, ()))
    return out
