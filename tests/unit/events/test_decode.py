"""decode_event: every reason code, the listed edge cases, and the conversions."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from stream.core.events import CartEvent, EmailOpenEvent, ErasureRequest, OrderEvent
from stream.events import REASONS, Rejection, decode_event
from stream.events import decode as decode_module


@pytest.fixture(params=[True, False], ids=["fast_path", "jsonschema_only"], autouse=True)
def fast_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Run every test with and without the accept-only fast check: results must not differ."""
    monkeypatch.setattr(decode_module, "FAST_PATH", request.param)
    return request.param


def order(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "evt-1",
        "type": "order",
        "customer_id": "cust-1",
        "occurred_at": "2024-03-01T12:30:00Z",
        "order_id": "ord-1",
        "total": 19.99,
        "currency": "USD",
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not _DROP}


def cart(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "evt-2",
        "type": "cart",
        "customer_id": "cust-1",
        "occurred_at": "2024-03-01T12:00:00Z",
        "cart_id": "cart-1",
        "action": "add",
        "cart_total": 10,
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not _DROP}


def email_open(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "evt-3",
        "type": "email_open",
        "customer_id": "cust-1",
        "occurred_at": "2024-03-01T08:00:00Z",
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not _DROP}


_DROP = object()


def dec(obj: Any, **kwargs: Any) -> Any:
    return decode_event(orjson.dumps(obj), **kwargs)


def rejected(result: Any, reason: str) -> Rejection:
    assert isinstance(result, Rejection), result
    assert result.reason == reason, result
    assert result.reason in REASONS
    assert result.detail and len(result.detail) <= 500
    return result


# ----------------------------------------------------------------------- accepted


def test_order_minimal() -> None:
    ev = dec(order())
    assert ev == OrderEvent(
        event_id="evt-1",
        customer_id="cust-1",
        occurred_at=1709296200000,
        order_id="ord-1",
        status="placed",
        total_micros=19_990_000,
        discounted=False,
        refund_micros=None,
        timezone=None,
    )


def test_order_full() -> None:
    ev = dec(
        order(
            status="refunded",
            refund_amount=5.5,
            discount_code="SPRING",
            discount_total=0,
            items=[{"sku": "a"}, {}],
            timezone="Europe/Paris",
        )
    )
    assert isinstance(ev, OrderEvent)
    assert ev.status == "refunded"
    assert ev.refund_micros == 5_500_000
    assert ev.discounted is True
    assert ev.timezone == "Europe/Paris"


@pytest.mark.parametrize(
    ("changes", "discounted"),
    [
        ({}, False),
        ({"discount_code": None}, False),
        ({"discount_code": ""}, False),
        ({"discount_code": "X"}, True),
        ({"discount_total": 0}, False),
        ({"discount_total": 0.0}, False),
        ({"discount_total": 0.01}, True),
        ({"discount_code": None, "discount_total": 3}, True),
    ],
)
def test_discounted(changes: dict[str, Any], discounted: bool) -> None:
    ev = dec(order(**changes))
    assert isinstance(ev, OrderEvent)
    assert ev.discounted is discounted


def test_null_discount_code_allowed() -> None:
    assert isinstance(dec(order(discount_code=None)), OrderEvent)


def test_extra_fields_allowed_and_ignored() -> None:
    ev = dec(order(channel="web", nested={"a": [1, 2]}, currency_note=None))
    assert ev == dec(order())


def test_cart_event() -> None:
    ev = dec(cart(action="checkout_started", cart_total=64.5, timezone="UTC"))
    assert ev == CartEvent(
        event_id="evt-2",
        customer_id="cust-1",
        occurred_at=1709294400000,
        cart_id="cart-1",
        action="checkout_started",
        cart_total_micros=64_500_000,
        timezone="UTC",
    )


def test_cart_currency_field_is_ignored() -> None:
    # The contract gives carts no currency: cart_total is in the reporting currency.
    ev = dec(cart(currency="eur", cart_total=1))
    assert isinstance(ev, CartEvent)
    assert ev.cart_total_micros == 1_000_000


def test_email_open_defaults_and_values() -> None:
    ev = dec(email_open())
    assert ev == EmailOpenEvent(
        event_id="evt-3",
        customer_id="cust-1",
        occurred_at=1709280000000,
        campaign_id=None,
        message_id=None,
        privacy_open=False,
    )
    ev = dec(email_open(campaign_id="c", message_id="m", apple_privacy_open=True))
    assert isinstance(ev, EmailOpenEvent)
    assert (ev.campaign_id, ev.message_id, ev.privacy_open) == ("c", "m", True)


# -------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T01:00:00+01:00", 0),
        ("1997-01-01T12:00:00Z", 852120000000),
        ("1997-01-01t12:00:00z", 852120000000),
        ("1997-01-01T12:00:00.5Z", 852120000500),
        ("1997-01-01T12:00:00.123456789Z", 852120000123),
        ("1997-01-01T12:00:00.9999Z", 852120000999),
        ("1997-01-01T12:00:00-05:30", 852120000000 + 5 * 3600_000 + 30 * 60_000),
        ("2000-02-29T00:00:00Z", 951782400000),
        ("2200-12-31T23:59:59.999Z", 7289654399999),
    ],
)
def test_occurred_at_to_epoch_ms(text: str, ms: int) -> None:
    ev = dec(order(occurred_at=text))
    assert isinstance(ev, OrderEvent), ev
    assert ev.occurred_at == ms


@pytest.mark.parametrize(
    "text",
    [
        "1997-01-01T12:00:00",  # no offset
        "1997-01-01 12:00:00Z",  # space separator
        "1997-02-30T00:00:00Z",  # impossible date
        "1900-02-29T00:00:00Z",  # not a leap year
        "1997-13-01T00:00:00Z",
        "1997-01-01T24:00:00Z",
        "1996-12-31T23:59:60Z",  # leap second
        "1997-01-01T12:00:00+24:00",
        "1997-01-01T12:00:00+0100",
        "1997-01-01",
        "12:00:00Z",
        "1997-01-01T12:00Z",
        "",
        "1997-01-01T12:00:00.Z",
        "\u0661\u0669\u0669\u0667-01-01T12:00:00Z",  # Arabic-Indic digits
        "1997-01-01T12:00:00Z\n",
    ],
)
def test_invalid_timestamp_format(text: str) -> None:
    rejected(dec(order(occurred_at=text)), "invalid_timestamp")


@pytest.mark.parametrize(
    "text",
    [
        "1969-12-31T23:59:59.999Z",
        "1970-01-01T00:30:00+01:00",  # 1969 in UTC
        "0001-01-01T00:00:00Z",
        "2201-01-01T00:00:00Z",
        "2200-12-31T23:00:00-01:00",  # 2201 in UTC
        "9999-12-31T23:59:59Z",
    ],
)
def test_timestamp_out_of_range(text: str) -> None:
    r = rejected(dec(order(occurred_at=text)), "invalid_timestamp")
    assert "range" in r.detail


def test_non_string_timestamp_is_schema_violation() -> None:
    r = rejected(dec(order(occurred_at=852120000000)), "schema_violation")
    assert r.detail.startswith("/occurred_at: ")


def test_bad_timestamp_and_other_errors_is_schema_violation() -> None:
    rejected(dec(order(occurred_at="1997-02-30T00:00:00Z", total=-1)), "schema_violation")


# ------------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("total", "micros"),
    [
        (0, 0),
        (0.0, 0),
        (-0.0, 0),
        (1, 1_000_000),
        (19.99, 19_990_000),
        (0.1, 100_000),
        (1234567.891234, 1_234_567_891_234),
        (0.0000005, 0),  # half-even: 0.5 micro -> 0
        (0.0000015, 2),  # 1.5 micro -> 2
        (0.0000025, 2),  # 2.5 micro -> 2
        (10**18, 10**24),
        (1e22, 10**28),
    ],
)
def test_money_to_micros_reporting_currency(total: float, micros: int) -> None:
    ev = dec(order(total=total))
    assert isinstance(ev, OrderEvent), ev
    assert ev.total_micros == micros


def test_number_text_is_taken_as_written() -> None:
    raw = (
        b'{"event_id":"e","type":"order","customer_id":"c","occurred_at":"2024-01-01T00:00:00Z",'
        b'"order_id":"o","total":0.30000000000000004,"currency":"USD","refund_amount":2.675}'
    )
    ev = decode_event(raw)
    assert isinstance(ev, OrderEvent)
    assert ev.total_micros == 300_000
    assert ev.refund_micros == 2_675_000


def test_foreign_currency_with_rate_is_converted_exactly() -> None:
    # 10 * 1.1 is 11.000000000000002 in floats; Decimal math gives exactly 11.
    ev = dec(order(total=10, currency="EUR", refund_amount=0.3), currency_rates={"EUR": 1.1})
    assert isinstance(ev, OrderEvent)
    assert ev.total_micros == 11_000_000
    assert ev.refund_micros == 330_000


def test_rate_rounding_half_even() -> None:
    # 0.000005 * 0.5 = 0.0000025 -> 2.5 micros -> 2; 0.000007 * 0.5 -> 3.5 -> 4
    assert dec(order(total=0.000005, currency="JPY"), currency_rates={"JPY": 0.5}).total_micros == 2
    assert dec(order(total=0.000007, currency="JPY"), currency_rates={"JPY": 0.5}).total_micros == 4


def test_rate_given_as_string_or_decimal() -> None:
    from decimal import Decimal

    a = dec(order(total=3, currency="GBP"), currency_rates={"GBP": "1.27"})
    b = dec(order(total=3, currency="GBP"), currency_rates={"GBP": Decimal("1.27")})
    assert a.total_micros == b.total_micros == 3_810_000


def test_reporting_currency_needs_no_rate_and_ignores_one() -> None:
    ev = dec(order(total=2, currency="EUR"), reporting_currency="EUR", currency_rates={"EUR": 3})
    assert ev.total_micros == 2_000_000


def test_unknown_currency_without_rate() -> None:
    r = rejected(dec(order(currency="EUR")), "unknown_currency")
    assert "EUR" in r.detail
    rejected(dec(order(currency="EUR"), currency_rates={"GBP": 1.2}), "unknown_currency")
    rejected(dec(order(currency="USD"), reporting_currency="EUR"), "unknown_currency")


@pytest.mark.parametrize("currency", ["eur", "usd", "EURO", "EU", "E1R", "", 840, None, "USD\n"])
def test_malformed_currency_is_schema_violation(currency: Any) -> None:
    r = rejected(dec(order(currency=currency)), "schema_violation")
    assert r.detail.startswith("/currency: ")


@pytest.mark.parametrize("rate", [0, -1.0, float("nan"), float("inf"), "abc", None, True])
def test_bad_rate_is_a_configuration_error(rate: Any) -> None:
    with pytest.raises(ValueError, match="EUR"):
        dec(order(currency="EUR"), currency_rates={"EUR": rate})


def test_total_1e400_is_malformed_json() -> None:
    # orjson refuses numbers that overflow a double instead of returning inf.
    raw = orjson.dumps(order()).replace(b'"total":19.99', b'"total":1e400')
    r = rejected(decode_event(raw), "malformed_json")
    assert "infinity" in r.detail


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"nan"])
def test_nan_infinity_are_malformed_json(literal: bytes) -> None:
    raw = orjson.dumps(order()).replace(b"19.99", literal)
    rejected(decode_event(raw), "malformed_json")


# -------------------------------------------------------------- schema violations


@pytest.mark.parametrize(
    ("obj", "detail"),
    [
        (order(total=-1), "/total: -1 is less than the minimum of 0"),
        (order(total=-0.01), "/total: -0.01 is less than the minimum of 0"),
        (order(order_id=_DROP), "/: missing required property order_id"),
        (order(order_id=""), "/order_id: "),
        (order(status="shipped"), "/status: 'shipped' is not one of"),
        (order(status=None), "/status: "),
        (order(customer_id="c" * 257), "/customer_id: "),
        (order(event_id=""), "/event_id: "),
        (order(event_id="e" * 257), "/event_id: "),
        (order(total="19.99"), "/total: '19.99' is not of type 'number'"),
        (order(total=True), "/total: True is not of type 'number'"),
        (order(discount_code=5), "/discount_code: "),
        (order(discount_total=-1), "/discount_total: "),
        (order(refund_amount=-1), "/refund_amount: "),
        (order(refund_amount=None), "/refund_amount: "),
        (order(items={"sku": 1}), "/items: "),
        (order(items=[1]), "/items/0: "),
        (order(timezone=None), "/timezone: "),
        (order(timezone=1), "/timezone: "),
        (cart(action="purchase"), "/action: "),
        (cart(cart_total=-5), "/cart_total: "),
        (cart(cart_id=_DROP), "/: missing required property cart_id"),
        (email_open(apple_privacy_open="true"), "/apple_privacy_open: "),
        (email_open(apple_privacy_open=1), "/apple_privacy_open: "),
        (email_open(campaign_id=None), "/campaign_id: "),
        (email_open(customer_id=_DROP, event_id=_DROP), "/: missing required properties"),
        ({"type": "order"}, "/: missing required properties"),
        ({"event_id": "e"}, "/: missing required property type"),
        (order(type=5), "/type: 5 is not one of"),
        (order(type=None), "/type: None is not one of"),
        (order(type=["order"]), "/type: "),
    ],
)
def test_schema_violation(obj: dict[str, Any], detail: str) -> None:
    r = rejected(dec(obj), "schema_violation")
    assert r.detail.startswith(detail), r.detail


def test_customer_id_at_256_chars_is_fine_257_is_not() -> None:
    assert isinstance(dec(order(customer_id="é" * 256)), OrderEvent)
    rejected(dec(order(customer_id="é" * 257)), "schema_violation")


def test_several_problems_are_counted() -> None:
    r = rejected(dec(order(total=-1, status="x", order_id=_DROP)), "schema_violation")
    assert r.detail.endswith("(and 2 more problems)")


def test_long_values_are_cut_in_detail() -> None:
    r = rejected(dec(order(event_id="x" * 100_000)), "schema_violation")
    assert len(r.detail) <= 500


# --------------------------------------------------------------------- the rest


@pytest.mark.parametrize("type_", ["refund", "Order", "", "page_view", "Erasure", "delete"])
def test_unknown_type(type_: str) -> None:
    r = rejected(dec(order(type=type_)), "unknown_type")
    assert repr(type_) in r.detail
    assert "'erasure'" in r.detail  # the accepted types are listed


def test_erasure_request() -> None:
    request = {"event_id": "erase-7", "type": "erasure", "customer_id": "cust-42", "occurred_at": "2024-06-01T11:00:00+02:00"}
    assert dec(request) == ErasureRequest("erase-7", "cust-42", 1_717_232_400_000)
    # Its schema has no time zone or amounts: such fields are ignored, never checked.
    assert dec({**request, "timezone": "Mars/Base", "total": -1}) == dec(request)
    rejected(dec({**request, "customer_id": ""}), "schema_violation")
    rejected(dec({key: value for key, value in request.items() if key != "event_id"}), "schema_violation")
    rejected(dec({**request, "occurred_at": "2024-06-01T09:00:00"}), "invalid_timestamp")


def test_invalid_timezone() -> None:
    for tz in ["Mars/Base", "", "utc", "Europe/paris", "../etc/passwd", "+01:00"]:
        rejected(dec(order(timezone=tz)), "invalid_timezone")
        rejected(dec(email_open(timezone=tz)), "invalid_timezone")
    for tz in ["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires", "Asia/Kolkata"]:
        assert not isinstance(dec(cart(timezone=tz)), Rejection)


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"", "empty message"),
        (b"\xef\xbb\xbf" + orjson.dumps({"type": "order"}), "byte order mark"),
        (b"[1, 2]", "top level is an array"),
        (b"[]", "top level is an array"),
        (b'"order"', "top level is a string"),
        (b"42", "top level is a number"),
        (b"null", "top level is null"),
        (b"true", "top level is a boolean"),
        (b"{", "not valid JSON"),
        (b'{"type": "order"} x', "not valid JSON"),
        (b'{"type": "\xff"}', "not valid JSON"),  # not UTF-8
        (b'{"type": "\\ud800"}', "not valid JSON"),  # lone surrogate
        ("{}".encode("utf-16"), "not valid JSON"),
        (b"   ", "not valid JSON"),
    ],
)
def test_malformed_json(raw: bytes, detail: str) -> None:
    r = rejected(decode_event(raw), "malformed_json")
    assert detail in r.detail


def test_oversized() -> None:
    obj = order(padding="")
    base = len(orjson.dumps(obj))
    exact = order(padding="p" * (1000 - base))
    raw = orjson.dumps(exact)
    assert len(raw) == 1000
    assert isinstance(decode_event(raw, max_event_bytes=1000), OrderEvent)
    r = rejected(decode_event(raw + b" ", max_event_bytes=1000), "oversized")
    assert "1001" in r.detail
    # the default limit is 256 KiB, checked before parsing
    big = orjson.dumps(order(padding="p" * 262_144))
    rejected(decode_event(big), "oversized")
    rejected(decode_event(b"x" * 262_145), "oversized")
    assert isinstance(decode_event(b"x" * 262_144), Rejection)  # malformed, not oversized
    assert decode_event(b"x" * 262_144).reason == "malformed_json"


def test_check_order() -> None:
    """Reasons come in the documented order when several apply."""
    bad_all = order(currency="EUR", timezone="Mars/Base", occurred_at="1960-01-01T00:00:00Z")
    rejected(dec(bad_all), "invalid_timestamp")
    del bad_all["occurred_at"]
    rejected(dec(bad_all), "schema_violation")
    rejected(dec(order(currency="EUR", timezone="Mars/Base")), "unknown_currency")


def test_accepts_bytearray_and_memoryview() -> None:
    raw = orjson.dumps(order())
    assert decode_event(bytearray(raw)) == decode_event(memoryview(raw)) == decode_event(raw)


def test_reason_codes_documented() -> None:
    doc = decode_module.__doc__ or ""
    for reason in REASONS:
        assert f"``{reason}``" in doc
