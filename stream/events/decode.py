"""Decode raw Kafka message bytes into typed events, or say exactly why not.

:func:`decode_event` turns one message value into a :class:`~stream.core.events.OrderEvent`,
:class:`~stream.core.events.CartEvent`, :class:`~stream.core.events.EmailOpenEvent` or
:class:`~stream.core.events.ErasureRequest`
(instants as epoch milliseconds, money as integer micro-units of the reporting currency),
or into a :class:`Rejection` carrying a stable machine-readable ``reason`` and a
human-readable ``detail``. It never raises for bad input; it raises only for a bad
configuration (an invalid currency rate).

Validation uses the JSON Schema files themselves (``schemas/*.schema.json``, draft
2020-12, with ``date-time`` format checking), compiled once at import, so the runtime
and the published schemas cannot disagree. jsonschema is slow (~200 us per event), so
an event is first offered to an accept-only check compiled from the same schema file
(:func:`stream.events.schemas.fast_check`, exact jsonschema semantics for the keyword
subset the input schemas use); anything it does not accept goes through jsonschema,
which decides and explains every rejection. Set :data:`FAST_PATH` to False to
validate every event with jsonschema; results are identical (property-tested). On
top of the schema the decoder checks what a schema cannot express (timestamp range,
configured currency rates, IANA zone names).

Reason codes
------------
Checked in this order; the first that applies is reported.

``oversized``
    The message value is larger than ``max_event_bytes`` (default 262144 = 256 KiB).
``malformed_json``
    Not a JSON document orjson accepts: empty, not UTF-8 (including lone surrogate
    escapes), starting with a UTF-8 byte order mark, containing ``NaN``/``Infinity``
    or a number that overflows a double (``1e400``), trailing garbage; or the top
    level is not an object (array, string, number, ...).
``unknown_type``
    ``type`` is a string other than ``order``, ``cart``, ``email_open``, ``erasure``. (A missing or
    non-string ``type`` is a ``schema_violation``.)
``schema_violation``
    The object breaks its type's JSON Schema: a required field missing, a wrong type,
    a value out of range, a bad enum value, an over-long string, a lower-case currency.
    ``detail`` is ``<JSON pointer>: <problem>``, e.g. ``/total: -1 is less than the
    minimum of 0``, followed by ``(and N more problems)`` when there are several.
``invalid_timestamp``
    ``occurred_at`` is a string but not an RFC 3339 date-time with an offset
    (``1997-01-01T12:00:00`` has none), names an impossible date or time
    (``1997-02-30T00:00:00Z``, hour 24, leap second ``:60``), or its instant lies
    outside the sane range ``[1970-01-01T00:00:00Z, 2201-01-01T00:00:00Z)``, i.e. its
    UTC year is before 1970 or after 2200. (The intake, ``stream.processing.intake``,
    also gives this reason to an event that occurred more than ``max_event_lead_seconds``
    after its message was published.) (A non-string ``occurred_at`` is a
    ``schema_violation``; when the timestamp and other fields are both wrong, the
    other fields win and the reason is ``schema_violation``.)
``unknown_currency``
    An order's ``currency`` is not ``reporting_currency`` and ``currency_rates`` has
    no rate for it.
``invalid_timezone``
    ``timezone`` is not a key of :func:`zoneinfo.available_timezones` (the IANA
    database of the system plus the ``tzdata`` package).

Conversions
-----------
- ``occurred_at`` -> epoch milliseconds, exact; sub-millisecond digits are dropped
  (floored: ``.9999`` -> 999 ms).
- Money -> integer micro-units: the JSON number is taken exactly as written (orjson
  gives ints exactly and floats whose shortest ``repr`` is the text written, for any
  amount with at most 15 significant digits), multiplied by the currency's rate in
  ``Decimal`` arithmetic when it is not the reporting currency, scaled by 10**6 and
  rounded half-even. ``total``, ``refund_amount`` (orders, in ``currency``) and
  ``cart_total`` (carts, always the reporting currency: the contract gives carts no
  currency) are converted.
- ``discounted`` = a non-empty ``discount_code`` string or ``discount_total > 0``.
- ``status`` defaults to ``placed``; ``apple_privacy_open`` to false;
  ``refund_amount`` absent -> ``refund_micros=None`` (refund the whole value).

Cost (measured on the development container, CPython 3.11, ~200-byte events): about
30-50 us per valid event with the fast check (:data:`FAST_PATH`, the default) and
about 175-290 us validating every event with jsonschema; a rejected event costs about
200 us (jsonschema computes the detail). Importing jsonschema[format-nongpl] takes ~3 s
once per process. Benchmark: ``python -m stream.events.bench``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any, Final

import orjson
from jsonschema.exceptions import ValidationError, best_match

from stream.core.events import CartEvent, EmailOpenEvent, ErasureRequest, InputEvent, OrderEvent

from .schemas import fast_check, validator

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "EVENT_TYPES",
    "MAX_INSTANT_MS",
    "MIN_INSTANT_MS",
    "REASONS",
    "Rejection",
    "decode_event",
    "encode_dead_letter",
    "format_instant",
    "parse_instant",
]

OVERSIZED: Final = "oversized"
MALFORMED_JSON: Final = "malformed_json"
UNKNOWN_TYPE: Final = "unknown_type"
SCHEMA_VIOLATION: Final = "schema_violation"
INVALID_TIMESTAMP: Final = "invalid_timestamp"
UNKNOWN_CURRENCY: Final = "unknown_currency"
INVALID_TIMEZONE: Final = "invalid_timezone"

#: Every reason code, in the order the checks run. Same list as dead_letter.schema.json.
REASONS: Final = (
    OVERSIZED,
    MALFORMED_JSON,
    UNKNOWN_TYPE,
    SCHEMA_VIOLATION,
    INVALID_TIMESTAMP,
    UNKNOWN_CURRENCY,
    INVALID_TIMEZONE,
)

DEFAULT_MAX_EVENT_BYTES: Final = 256 * 1024
EVENT_TYPES: Final = ("order", "cart", "email_open", "erasure")

_EPOCH_ORDINAL: Final = _dt.date(1970, 1, 1).toordinal()
#: Accepted instants: [1970-01-01T00:00:00Z, 2201-01-01T00:00:00Z).
MIN_INSTANT_MS: Final = 0
MAX_INSTANT_MS: Final = (_dt.date(2201, 1, 1).toordinal() - _EPOCH_ORDINAL) * 86_400_000

_DETAIL_MAX: Final = 500
_MICROS_EXP: Final = 6


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message was not decoded: ``reason`` is one of :data:`REASONS`."""

    reason: str
    detail: str


# Compiled once: one validator per event type, from the schema files, and the
# accept-only fast check compiled from the same files (see schemas.fast_check).
_VALIDATORS: Final = {t: validator(t) for t in EVENT_TYPES}
_FAST_CHECKS: Final = {t: fast_check(t) for t in EVENT_TYPES}

#: When True (default), an event the fast check accepts skips the jsonschema
#: validator (~10x cheaper); anything else is validated by jsonschema. Setting it to
#: False validates every event with jsonschema; results are identical either way.
FAST_PATH = True


# --------------------------------------------------------------------------- time

# RFC 3339 section 5.6 date-time. T and Z may be lower case (RFC 3339 5.6 NOTE), as
# jsonschema's date-time check (rfc3339-validator on the upper-cased string) allows.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))",
    re.ASCII,
)


def parse_instant(text: str) -> int | None:
    """RFC 3339 date-time with offset -> epoch ms, or None if not one (range not checked)."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    if hour > 23 or minute > 59 or second > 59 or year == 0:
        return None
    try:
        ordinal = _dt.date(year, month, day).toordinal()
    except ValueError:
        return None
    offset = 0
    if m.group(8) is not None:
        oh, om = int(m.group(9)), int(m.group(10))
        if oh > 23 or om > 59:
            return None
        offset = (oh * 60 + om) * 60
        if m.group(8) == "-":
            offset = -offset
    frac = m.group(7)
    millis = int(frac[:3].ljust(3, "0")) if frac else 0
    seconds = (ordinal - _EPOCH_ORDINAL) * 86_400 + hour * 3600 + minute * 60 + second - offset
    return seconds * 1000 + millis


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def format_instant(ms: int) -> str:
    """Epoch ms -> RFC 3339 in UTC with milliseconds, e.g. ``2024-03-01T12:30:00.000Z``."""
    text = (_EPOCH + _dt.timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")
    return text.removesuffix("+00:00") + "Z"


# -------------------------------------------------------------------------- money

# Enough digits that no conversion ever rounds before the final half-even step
# (a double has at most 17 significant digits and an exponent within +-324).
_DEC = Context(prec=1000, rounding=ROUND_HALF_EVEN, Emax=10_000, Emin=-10_000)


def _exact(number: int | float) -> Decimal:
    # ints (exact from orjson) and floats via their shortest repr: the text as written.
    return Decimal(number) if type(number) is int else Decimal(repr(number))


def _micros(number: int | float, rate: Decimal | None) -> int:
    if rate is None:
        if type(number) is int:
            return number * 1_000_000
        value = Decimal(repr(number))
    else:
        value = _DEC.multiply(_exact(number), rate)
    return int(_DEC.scaleb(value, _MICROS_EXP).to_integral_value(ROUND_HALF_EVEN, _DEC))


def _rate(currency: str, rates: Mapping[str, Any]) -> Decimal:
    raw = rates[currency]
    try:
        if isinstance(raw, Decimal):
            rate = raw
        elif isinstance(raw, bool):
            raise TypeError
        elif isinstance(raw, int):
            rate = Decimal(raw)
        elif isinstance(raw, float):
            rate = Decimal(repr(raw))
        elif isinstance(raw, str):
            rate = Decimal(raw.strip())
        else:
            raise TypeError
    except (TypeError, InvalidOperation):
        raise ValueError(f"currency rate for {currency!r} is not a number: {raw!r}") from None
    if not rate.is_finite() or rate <= 0:
        raise ValueError(f"currency rate for {currency!r} must be finite and > 0, got {raw!r}")
    return rate


# ----------------------------------------------------------------------- timezone


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


# ------------------------------------------------------------------------ details


def _short(text: str, limit: int = _DETAIL_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _pointer(path: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _describe(error: ValidationError) -> str:
    where = _pointer(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [p for p in error.validator_value if p not in error.instance]
        names = ", ".join(_short(str(p), 60) for p in missing)
        noun = "property" if len(missing) == 1 else "properties"
        return f"{where or '/'}: missing required {noun} {names}"
    return f"{where or '/'}: {_short(error.message, 300)}"


def _is_timestamp_error(error: ValidationError) -> bool:
    return (
        error.validator == "format"
        and error.validator_value == "date-time"
        and list(error.absolute_path) == ["occurred_at"]
    )


# ------------------------------------------------------------------------- decode


def decode_event(
    raw: bytes,
    *,
    reporting_currency: str = "USD",
    currency_rates: Mapping[str, float] | None = None,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> InputEvent | Rejection:
    """Decode one message value into a typed event, or a :class:`Rejection` saying why not.

    ``currency_rates`` maps an ISO 4217 code to how many units of the reporting
    currency one unit of it is worth (``{"EUR": 1.08}``); the reporting currency
    itself never needs a rate. Raises ``ValueError`` only for an unusable rate.
    """
    size = len(raw)
    if size > max_event_bytes:
        return Rejection(OVERSIZED, f"message is {size} bytes, the limit is {max_event_bytes}")
    if size == 0:
        return Rejection(MALFORMED_JSON, "empty message")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection(MALFORMED_JSON, _short(f"not valid JSON: {exc}"))
    if type(obj) is not dict:
        kind = "null" if obj is None else type(obj).__name__
        kind = {"list": "an array", "str": "a string", "int": "a number", "float": "a number",
                "bool": "a boolean"}.get(kind, kind)
        return Rejection(MALFORMED_JSON, f"top level is {kind}, not an object")

    event_type = obj.get("type")
    validate = _VALIDATORS.get(event_type) if type(event_type) is str else None
    if validate is None:
        if "type" not in obj:
            return Rejection(SCHEMA_VIOLATION, "/: missing required property type")
        if type(event_type) is str:
            return Rejection(
                UNKNOWN_TYPE,
                _short(f"/type: {event_type!r} is not one of {', '.join(map(repr, EVENT_TYPES))}"),
            )
        return Rejection(
            SCHEMA_VIOLATION, _short(f"/type: {event_type!r} is not one of {list(EVENT_TYPES)}")
        )

    fast = _FAST_CHECKS[event_type] if FAST_PATH else None
    errors = [] if fast is not None and fast(obj) else list(validate.iter_errors(obj))
    if errors:
        others = [e for e in errors if not _is_timestamp_error(e)]
        if not others:
            return Rejection(
                INVALID_TIMESTAMP,
                _short(f"/occurred_at: {obj['occurred_at']!r} is not an RFC 3339 date-time "
                       "with an offset"),
            )
        detail = _describe(best_match(others))
        if len(errors) > 1:
            detail += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        return Rejection(SCHEMA_VIOLATION, detail)

    occurred_at = obj["occurred_at"]
    ms = parse_instant(occurred_at)
    if ms is None:  # the schema's checker and parse_instant agree; kept as a guard
        return Rejection(
            INVALID_TIMESTAMP,
            _short(f"/occurred_at: {occurred_at!r} is not an RFC 3339 date-time with an offset"),
        )
    if not MIN_INSTANT_MS <= ms < MAX_INSTANT_MS:
        return Rejection(
            INVALID_TIMESTAMP,
            _short(f"/occurred_at: {occurred_at!r} is outside the accepted range "
                   "1970-01-01T00:00:00Z .. 2200-12-31T23:59:59.999Z"),
        )

    rate: Decimal | None = None
    if event_type == "order":
        currency = obj["currency"]
        if currency != reporting_currency:
            if not currency_rates or currency not in currency_rates:
                return Rejection(
                    UNKNOWN_CURRENCY,
                    f"/currency: {currency!r} is not the reporting currency "
                    f"{reporting_currency!r} and no rate is configured for it",
                )
            rate = _rate(currency, currency_rates)

    if event_type == "erasure":  # its schema has no timezone: any other field is ignored
        return ErasureRequest(event_id=obj["event_id"], customer_id=obj["customer_id"], occurred_at=ms)

    timezone = obj.get("timezone")
    if timezone is not None and timezone not in _known_zones():
        return Rejection(
            INVALID_TIMEZONE, _short(f"/timezone: {timezone!r} is not a known IANA time zone")
        )

    if event_type == "order":
        discount_code = obj.get("discount_code")
        discount_total = obj.get("discount_total")
        refund = obj.get("refund_amount")
        return OrderEvent(
            event_id=obj["event_id"],
            customer_id=obj["customer_id"],
            occurred_at=ms,
            order_id=obj["order_id"],
            status=obj.get("status", "placed"),
            total_micros=_micros(obj["total"], rate),
            discounted=bool(discount_code) or (discount_total is not None and discount_total > 0),
            refund_micros=None if refund is None else _micros(refund, rate),
            timezone=timezone,
        )
    if event_type == "cart":
        return CartEvent(
            event_id=obj["event_id"],
            customer_id=obj["customer_id"],
            occurred_at=ms,
            cart_id=obj["cart_id"],
            action=obj["action"],
            cart_total_micros=_micros(obj["cart_total"], None),
            timezone=timezone,
        )
    return EmailOpenEvent(
        event_id=obj["event_id"],
        customer_id=obj["customer_id"],
        occurred_at=ms,
        campaign_id=obj.get("campaign_id"),
        message_id=obj.get("message_id"),
        privacy_open=obj.get("apple_privacy_open", False),
        timezone=timezone,
    )


# -------------------------------------------------------------------- dead letter


def encode_dead_letter(
    raw: bytes,
    rejection: Rejection,
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    key: bytes | None,
    failed_at_ms: int,
    worker: str | None = None,
    max_original_bytes: int | None = None,
) -> bytes:
    """The dead-letter record (JSON bytes, valid against dead_letter.schema.json).

    ``original_b64`` holds the whole message unless ``max_original_bytes`` is given and
    the message is larger; then it holds the first ``max_original_bytes`` bytes and the
    record says ``original_truncated: true`` (useful when the dead-letter topic's
    message size limit is below the input's).
    """
    if rejection.reason not in REASONS:
        raise ValueError(f"unknown rejection reason {rejection.reason!r}")
    raw = bytes(raw)
    kept = raw
    if max_original_bytes is not None and len(raw) > max_original_bytes:
        kept = raw[:max_original_bytes]
    record: dict[str, Any] = {
        "reason": rejection.reason,
        "detail": rejection.detail,
        "source": {
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "timestamp_ms": timestamp_ms,
            "key_b64": None if key is None else base64.b64encode(bytes(key)).decode("ascii"),
        },
        "original_b64": base64.b64encode(kept).decode("ascii"),
        "original_size": len(raw),
        "failed_at": format_instant(failed_at_ms),
    }
    if kept is not raw:
        record["original_truncated"] = True
    if worker is not None:
        record["worker"] = worker
    return orjson.dumps(record)
