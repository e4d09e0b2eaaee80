"""Property tests: the runtime decoder agrees with the JSON Schemas.

Events are generated from the input contract (spec section 0). Valid ones, and
mutations of them (a required field dropped, a value of the wrong type, out of range,
a bad enum value, a bad date, ...), are serialized to bytes and decoded. The oracle is
jsonschema itself: the event schema (event.schema.json, with date-time format
checking) plus the three checks a schema cannot express (timestamp range, currency
rate, IANA zone), computed here independently. decode_event must accept exactly what
the oracle accepts, and for accepted events reproduce the values exactly (epoch ms,
micro-units). Every example is decoded with and without the accept-only fast check
(results must be identical), and the fast check is compared with jsonschema directly.
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.core.events import CartEvent, EmailOpenEvent, ErasureRequest, OrderEvent
from stream.events import Rejection, decode_event, validator
from stream.events import decode as decode_module
from stream.events.schemas import fast_check

# Moderate by default so the unit suite stays fast; soak with e.g.
# EVENTS_PROPERTY_EXAMPLES=5000 pytest tests/unit/events/test_properties.py
SETTINGS = settings(
    max_examples=int(os.environ.get("EVENTS_PROPERTY_EXAMPLES", "120")), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
RATES = {"EUR": 1.08, "GBP": 1.27, "JPY": 0.0067, "CHF": 1.1}
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
UPPER = dt.datetime(2201, 1, 1, tzinfo=dt.timezone.utc)

# ------------------------------------------------------------------ valid events

text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
ids = st.one_of(
    text,
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=250, max_size=256),
)


@st.composite
def timestamps(draw: Any) -> tuple[str, int]:
    """An RFC 3339 string within range, and its epoch ms."""
    local = draw(st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2200, 12, 30)))
    offset_min = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    digits = draw(st.sampled_from([0, 1, 3, 6, 9]))
    frac = f"{local.microsecond:06d}" + draw(st.sampled_from(["000", "999", "123"]))
    frac = "." + frac[:digits] if digits else ""
    if offset_min == 0 and draw(st.booleans()):
        zone = draw(st.sampled_from(["Z", "z", "+00:00", "-00:00"]))
    else:
        sign = "-" if offset_min < 0 else "+"
        zone = f"{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"
    sep = draw(st.sampled_from(["T", "t"]))
    text_ = local.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + frac + zone
    kept_us = int(frac[1:7].ljust(6, "0")) if frac else 0
    instant = local.replace(microsecond=kept_us, tzinfo=dt.timezone(dt.timedelta(minutes=offset_min)))
    return text_, (instant - EPOCH) // dt.timedelta(milliseconds=1)


@st.composite
def money(draw: Any) -> tuple[int | float, int]:
    """A JSON number and its exact value in micro-units (at most 15 significant digits)."""
    micros = draw(st.one_of(st.integers(0, 10**15), st.integers(0, 10**8)))
    if micros % 1_000_000 == 0 and draw(st.booleans()):
        return micros // 1_000_000, micros
    return float(Decimal(micros).scaleb(-6)), micros


def common(draw: Any, type_: str) -> tuple[dict[str, Any], dict[str, Any]]:
    ts, ms = draw(timestamps())
    event: dict[str, Any] = {
        "event_id": draw(ids),
        "type": type_,
        "customer_id": draw(ids),
        "occurred_at": ts,
    }
    expect: dict[str, Any] = {"occurred_at": ms, "timezone": None}
    if draw(st.booleans()):
        event["timezone"] = expect["timezone"] = draw(st.sampled_from(ZONES))
    if draw(st.booleans()):  # fields outside the contract are allowed
        extra = draw(st.dictionaries(st.sampled_from(["x", "channel", "meta", "utm"]),
                                     st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), text)))
        event.update(extra)
    return event, expect


items = st.lists(st.dictionaries(st.sampled_from(["sku", "qty"]), st.integers(0, 9)), max_size=3)


@st.composite
def orders(draw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    event, expect = common(draw, "order")
    total, total_micros = draw(money())
    currency = draw(st.sampled_from(["USD", "USD", *RATES]))
    event.update(order_id=draw(text), total=total, currency=currency)
    rate = None if currency == "USD" else Decimal(repr(RATES[currency]))
    expect.update(total_micros=convert(total_micros, rate), status="placed",
                  refund_micros=None, discounted=False)
    if draw(st.booleans()):
        event["status"] = expect["status"] = draw(st.sampled_from(["placed", "cancelled", "refunded"]))
    if draw(st.booleans()):
        event["discount_code"] = draw(st.one_of(st.none(), st.just(""), text))
        expect["discounted"] = bool(event["discount_code"])
    if draw(st.booleans()):
        value, micros = draw(money())
        event["discount_total"] = value
        expect["discounted"] = expect["discounted"] or micros > 0
    if draw(st.booleans()):
        value, micros = draw(money())
        event["refund_amount"] = value
        expect["refund_micros"] = convert(micros, rate)
    if draw(st.booleans()):
        event["items"] = draw(items)
    return event, expect


@st.composite
def carts(draw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    event, expect = common(draw, "cart")
    total, micros = draw(money())
    event.update(
        cart_id=draw(text),
        action=draw(st.sampled_from(["add", "remove", "update", "checkout_started", "cleared"])),
        cart_total=total,
    )
    expect.update(cart_id=event["cart_id"], action=event["action"], cart_total_micros=micros)
    if draw(st.booleans()):
        event["items"] = draw(items)
    return event, expect


@st.composite
def email_opens(draw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    event, expect = common(draw, "email_open")
    expect.update(campaign_id=None, message_id=None, privacy_open=False)
    for field in ["campaign_id", "message_id"]:
        if draw(st.booleans()):
            event[field] = expect[field] = draw(st.text(max_size=10))
    if draw(st.booleans()):
        event["apple_privacy_open"] = expect["privacy_open"] = draw(st.booleans())
    return event, expect


@st.composite
def erasures(draw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    event, expect = common(draw, "erasure")
    del expect["timezone"]  # not in its schema: any value is an ignored extra field
    if draw(st.booleans()):
        event["timezone"] = draw(st.sampled_from(["Mars/Olympus", "", "Europe/Paris"]))
    return event, expect


valid_events = st.one_of(orders(), carts(), email_opens(), erasures())

_CTX = Context(prec=200)


def convert(micros: int, rate: Decimal | None) -> int:
    if rate is None:
        return micros
    return int(_CTX.multiply(Decimal(micros), rate).to_integral_value(ROUND_HALF_EVEN, _CTX))


# -------------------------------------------------------------------- mutations

BAD_DATES = [
    "1997-01-01T12:00:00", "1997-02-30T00:00:00Z", "1997-01-01 12:00:00Z", "1997-01-01",
    "1996-12-31T23:59:60Z", "1997-01-01T25:00:00Z", "1997-01-01T12:00:00+2400", "",
    "2024-02-30T10:00:00+01:00", "1997-01-01T12:00:00.Z", "yesterday",
]
OUT_OF_RANGE_DATES = [
    "1969-12-31T23:59:59.999Z", "1970-01-01T00:30:00+01:00", "0001-01-01T00:00:00Z",
    "2201-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2200-12-31T23:00:00-01:00",
]
EDGE_DATES = ["1970-01-01T00:00:00Z", "2200-12-31T23:59:59.999Z", "2000-02-29T00:00:00Z"]
ENUM_VALUES = ["order", "cart", "email_open", "erasure", "placed", "cancelled", "refunded", "add",
               "cleared", "shipped", "Placed", "ADD"]
FIELDS = ["event_id", "type", "customer_id", "occurred_at", "order_id", "status", "total",
          "currency", "discount_code", "discount_total", "refund_amount", "items", "cart_id",
          "action", "cart_total", "campaign_id", "message_id", "apple_privacy_open", "timezone"]

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([-1, -0.000001, -1e-300, 0, 1.5, 2**53]),
    st.text(max_size=5),
    st.sampled_from(["", "x" * 257, "x" * 256]),
    st.sampled_from(BAD_DATES + OUT_OF_RANGE_DATES + EDGE_DATES),
    st.sampled_from(ENUM_VALUES),
    st.sampled_from(["USD", "usd", "EUR", "GBP", "XYZ", "US", "USDD", "USD\n", "U$D"]),
    st.sampled_from(ZONES + ["Mars/Base", "utc", "Europe/paris", "+01:00"]),
    st.lists(st.one_of(st.integers(-9, 9), st.dictionaries(st.text(max_size=2), st.integers(-9, 9))), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(-9, 9), max_size=2),
)


@st.composite
def mutated_events(draw: Any) -> dict[str, Any]:
    event, _ = draw(valid_events)
    event = dict(event)
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(FIELDS))
        if draw(st.integers(0, 3)) == 0:
            event.pop(field, None)
        else:
            event[field] = draw(junk)
    return event


# ----------------------------------------------------------------------- oracle


def oracle(event: dict[str, Any], rates: dict[str, float]) -> str | None:
    """None if the event must be accepted, else the expected family of reasons."""
    if isinstance(event.get("type"), str) and event["type"] not in ("order", "cart", "email_open", "erasure"):
        return "unknown_type"
    if not validator("event").is_valid(event):
        return "schema"
    instant = dt.datetime.fromisoformat(event["occurred_at"].upper())
    if not EPOCH <= instant < UPPER:
        return "invalid_timestamp"
    if event["type"] == "order" and event["currency"] != "USD" and event["currency"] not in rates:
        return "unknown_currency"
    if "timezone" in event and event["type"] != "erasure" and event["timezone"] not in zoneinfo.available_timezones():
        return "invalid_timezone"
    return None


def decode_with(fast_path: bool, raw: bytes, rates: dict[str, float]) -> Any:
    old = decode_module.FAST_PATH
    decode_module.FAST_PATH = fast_path
    try:
        return decode_event(raw, currency_rates=rates)
    finally:
        decode_module.FAST_PATH = old


def check_agreement(event: dict[str, Any], rates: dict[str, float]) -> Any:
    raw = orjson.dumps(event)
    result = decode_with(True, raw, rates)
    # the accept-only fast check never changes a result
    assert decode_with(False, raw, rates) == result
    for name in ["order", "cart", "email_open", "erasure"]:
        assert fast_check(name)(event) == validator(name).is_valid(event), (name, event)
    expected = oracle(event, rates)
    if expected is None:
        assert not isinstance(result, Rejection), (event, result)
        return result
    assert isinstance(result, Rejection), (event, expected, result)
    if expected == "schema":
        assert result.reason in ("schema_violation", "invalid_timestamp"), (event, result)
        if result.reason == "invalid_timestamp":
            # only the timestamp is wrong: with a good one the schema accepts the event
            fixed = dict(event, occurred_at="2024-01-01T00:00:00Z")
            assert validator("event").is_valid(fixed), (event, result)
            assert not validator("event").is_valid(event)
    else:
        assert result.reason == expected, (event, result)
    return result


@SETTINGS
@given(case=valid_events)
def test_valid_events_round_trip(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    event, expect = case
    assert validator("event").is_valid(event)
    result = check_agreement(event, RATES)
    cls = {"order": OrderEvent, "cart": CartEvent, "email_open": EmailOpenEvent, "erasure": ErasureRequest}[event["type"]]
    assert type(result) is cls
    assert result.event_id == event["event_id"]
    assert result.customer_id == event["customer_id"]
    for key, value in expect.items():
        assert getattr(result, key) == value, (key, event, result)
    if cls is OrderEvent:
        assert result.order_id == event["order_id"]


@SETTINGS
@given(event=mutated_events(), rates=st.sampled_from([RATES, {}]))
def test_mutated_events_agree_with_schema(event: dict[str, Any], rates: dict[str, float]) -> None:
    check_agreement(event, rates)


def test_fast_check_refuses_unsupported_keywords() -> None:
    from stream.events import schemas

    assert schemas._compile({"type": "string"})("x")
    for unsupported in [{"oneOf": []}, {"additionalProperties": False}, {"format": "email"},
                        {"enum": [1]}, {"maximum": 3}, {"$ref": "#"}]:
        with pytest.raises(schemas._Unsupported):
            schemas._compile(unsupported)
    assert fast_check("event") is None  # uses oneOf/$ref: jsonschema only
