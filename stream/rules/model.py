"""The rules model: every default of the segmentation contract that users may change.

Why a typed model: the rules file is edited by marketers. A typo (``recency.tresholds``)
or a nonsensical value (thresholds out of order, an unknown time zone) must fail loudly
when the file is loaded, naming the field, instead of silently segmenting everybody
wrong. Pydantic gives us the field paths; the checks that span several values
(monotonic thresholds, the 5x5 grid) are model validators below.

Conventions (they are the spec's, see ``/work/shared/spec/segmentation.md`` §§1-6):

- ``scores.recency.thresholds``: ``[t5, t4, t3, t2]``: R = 5 if ``recency_days <= t5``,
  4 if ``<= t4`` ... 1 otherwise. Must strictly increase.
- ``scores.frequency.thresholds`` / ``scores.monetary.thresholds``: ``[t5, t4, t3, t2]``:
  score 5 if the metric ``>= t5`` ... 1 otherwise. Must strictly decrease.
  Monetary thresholds are amounts in the reporting currency with at most 2 decimals.
- ``segments.r5`` .. ``segments.r1``: one row of the grid per R score, 5 names each,
  for FM = 1..5. Every name must be listed in ``segments.names``.

The model is frozen: one ``Rules`` value is shared by every customer evaluation and
its ``version`` (a content hash) must never drift from its content.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import cached_property
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, field_validator, model_validator

RULES_SCHEMA = 1

SEGMENT_NAMES: tuple[str, ...] = (
    "Champions",
    "Loyal Customers",
    "Potential Loyalist",
    "New Customers",
    "Promising",
    "Need Attention",
    "About To Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
    "Lost",
)


def _plain(d: Decimal) -> str:
    """Decimal as a plain number string: 1000, 0.5, 1.08 (never 1E+3)."""
    s = format(d.normalize(), "f")
    return s


class RulesError(ValueError):
    """An invalid rules file. The message names the file, the field path and the problem."""


def _to_decimal(value: Any) -> Any:
    """TOML numbers arrive as int or float; go through ``str`` so 1.08 stays exactly 1.08."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    if isinstance(value, (int, float)):
        try:
            dec = Decimal(str(value))
        except InvalidOperation as exc:  # pragma: no cover - str(float) always parses
            raise ValueError(f"not a number: {value!r}") from exc
        if not dec.is_finite():
            raise ValueError("must be a finite number")
        return dec
    if isinstance(value, str):
        # Quoted decimals carry values a TOML float (a double) cannot: "1.123456789012345678".
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("must be a finite number")
        return value
    raise ValueError(f"must be a number, got {type(value).__name__}")


Number = Annotated[Decimal, BeforeValidator(_to_decimal)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- scores ------------------------------------------------------------------------------


class RecencyScore(_Strict):
    thresholds: tuple[StrictInt, StrictInt, StrictInt, StrictInt] = (30, 90, 180, 365)

    @model_validator(mode="after")
    def _increasing(self) -> RecencyScore:
        t = self.thresholds
        if t[0] < 0:
            raise ValueError(f"thresholds must be >= 0 days {tuple(t)}")
        if any(b <= a for a, b in zip(t, t[1:])):
            raise ValueError(f"thresholds must increase {tuple(t)}")
        return self


class FrequencyScore(_Strict):
    thresholds: tuple[StrictInt, StrictInt, StrictInt, StrictInt] = (10, 6, 4, 2)

    @model_validator(mode="after")
    def _decreasing(self) -> FrequencyScore:
        t = self.thresholds
        if t[-1] < 1:
            raise ValueError(f"thresholds must be >= 1 order {tuple(t)}")
        if any(b >= a for a, b in zip(t, t[1:])):
            raise ValueError(f"thresholds must decrease {tuple(t)}")
        return self


class MonetaryScore(_Strict):
    thresholds: tuple[Number, Number, Number, Number] = (
        Decimal(1000),
        Decimal(500),
        Decimal(200),
        Decimal(50),
    )

    @model_validator(mode="after")
    def _decreasing(self) -> MonetaryScore:
        t = self.thresholds
        shown = tuple(_plain(x) for x in t)
        for x in t:
            if x < 0:
                raise ValueError(f"thresholds must be >= 0 ({', '.join(shown)})")
            if x != x.quantize(Decimal("0.01")):
                raise ValueError(f"thresholds have at most 2 decimals (cents) ({', '.join(shown)})")
        if any(b >= a for a, b in zip(t, t[1:])):
            raise ValueError(f"thresholds must decrease ({', '.join(shown)})")
        return self


class Scores(_Strict):
    recency: RecencyScore = RecencyScore()
    frequency: FrequencyScore = FrequencyScore()
    monetary: MonetaryScore = MonetaryScore()


# --- segment grid --------------------------------------------------------------------------

Row = tuple[str, str, str, str, str]


class Segments(_Strict):
    names: tuple[str, ...] = SEGMENT_NAMES
    r5: Row = ("New Customers", "Potential Loyalist", "Potential Loyalist", "Champions", "Champions")
    r4: Row = ("Promising", "Potential Loyalist", "Potential Loyalist", "Loyal Customers", "Champions")
    r3: Row = ("About To Sleep", "Need Attention", "Need Attention", "Loyal Customers", "Loyal Customers")
    r2: Row = ("Hibernating", "About To Sleep", "At Risk", "At Risk", "Can't Lose Them")
    r1: Row = ("Lost", "Hibernating", "At Risk", "Can't Lose Them", "Can't Lose Them")

    @field_validator("names")
    @classmethod
    def _names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if not names:
            raise ValueError("must list at least one segment name")
        for n in names:
            if not n.strip():
                raise ValueError("segment names must be non-empty")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate segment names {dup}")
        return names

    @model_validator(mode="after")
    def _known(self) -> Segments:
        known = set(self.names)
        for r in (5, 4, 3, 2, 1):
            row = getattr(self, f"r{r}")
            for i, name in enumerate(row):
                if name not in known:
                    raise ValueError(
                        f"@r{r}[{i}]: unknown segment {name!r} (not listed in segments.names)"
                    )
        return self

    def row(self, r: int) -> Row:
        return getattr(self, f"r{r}")


# --- tags --------------------------------------------------------------------------------


PosInt = Annotated[StrictInt, Field(ge=1)]
NonNegInt = Annotated[StrictInt, Field(ge=0)]
Score = Annotated[StrictInt, Field(ge=1, le=5)]


class OneTimeBuyer(_Strict):
    min_recency_days: NonNegInt = 60


class RepeatPurchaser(_Strict):
    min_orders: PosInt = 2
    max_recency_days: NonNegInt = 365


class Lapsed(_Strict):
    min_recency_days: NonNegInt = 180


class HighSpender(_Strict):
    min_m: Score = 5


class LowSpender(_Strict):
    min_f: Score = 3
    max_m: Score = 2


class CouponLover(_Strict):
    min_frequency: PosInt = 3
    min_discounted_percent: Number = Decimal(60)

    @field_validator("min_discounted_percent")
    @classmethod
    def _pct(cls, v: Decimal) -> Decimal:
        if not (0 < v <= 100):
            raise ValueError("must be > 0 and <= 100 (a percentage)")
        return v


class Overdue(_Strict):
    min_days: NonNegInt = 14
    gap_multiplier: Number = Decimal(2)
    max_recency_days: NonNegInt = 365
    min_orders: Annotated[StrictInt, Field(ge=2)] = 3

    @field_validator("gap_multiplier")
    @classmethod
    def _mult(cls, v: Decimal) -> Decimal:
        if v <= 0:
            raise ValueError("must be > 0")
        return v


class CartAbandoner(_Strict):
    after_hours: Number = Decimal(4)
    until_days: Number = Decimal(7)

    @model_validator(mode="after")
    def _order(self) -> CartAbandoner:
        if self.after_hours < 0:
            raise ValueError("after_hours must be >= 0")
        if self.after_ms != self.after_hours * 3_600_000 or self.until_ms != self.until_days * 86_400_000:
            raise ValueError("after_hours / until_days must be whole milliseconds")
        if self.until_ms <= self.after_ms:
            raise ValueError(
                f"until_days ({_plain(self.until_days)} days) must be later than after_hours "
                f"({_plain(self.after_hours)} h)"
            )
        return self

    @property
    def after_ms(self) -> int:
        return int(self.after_hours * 3_600_000)

    @property
    def until_ms(self) -> int:
        return int(self.until_days * 86_400_000)


class Prospect(_Strict):
    window_days: PosInt = 30


class EngagedNonBuyer(_Strict):
    min_opens: PosInt = 2
    opens_window_days: PosInt = 30
    no_order_days: PosInt = 60


class Tags(_Strict):
    one_time_buyer: OneTimeBuyer = OneTimeBuyer()
    repeat_purchaser: RepeatPurchaser = RepeatPurchaser()
    lapsed: Lapsed = Lapsed()
    high_spender: HighSpender = HighSpender()
    low_spender: LowSpender = LowSpender()
    coupon_lover: CouponLover = CouponLover()
    overdue: Overdue = Overdue()
    cart_abandoner: CartAbandoner = CartAbandoner()
    prospect: Prospect = Prospect()
    engaged_non_buyer: EngagedNonBuyer = EngagedNonBuyer()


TAG_NAMES: tuple[str, ...] = tuple(sorted(Tags.model_fields))


# --- the whole file --------------------------------------------------------------------------


class Rules(_Strict):
    """All user-changeable defaults. ``Rules()`` is exactly the spec's defaults."""

    rules_schema: StrictInt = RULES_SCHEMA
    timezone: str = "UTC"
    window_days: PosInt = 730
    reporting_currency: str = "USD"
    currency_rates: dict[str, Number] = Field(default_factory=dict)
    max_event_bytes: Annotated[StrictInt, Field(ge=1024)] = 262144
    scores: Scores = Scores()
    segments: Segments = Segments()
    tags: Tags = Tags()

    @field_validator("rules_schema")
    @classmethod
    def _schema(cls, v: int) -> int:
        if v != RULES_SCHEMA:
            raise ValueError(f"unsupported rules_schema {v} (this version reads {RULES_SCHEMA})")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown IANA time zone {v!r} (e.g. 'UTC', 'Europe/Berlin')") from None
        return v

    @field_validator("reporting_currency")
    @classmethod
    def _ccy(cls, v: str) -> str:
        _check_currency(v)
        return v

    @field_validator("currency_rates")
    @classmethod
    def _rates(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        for code, rate in v.items():
            _check_currency(code, what=f"currency code {code!r}")
            if rate <= 0:
                raise ValueError(f"{code}: rate must be > 0, got {_plain(rate)}")
        return v

    @model_validator(mode="after")
    def _rate_for_reporting(self) -> Rules:
        rate = self.currency_rates.get(self.reporting_currency)
        if rate is not None and rate != 1:
            raise ValueError(
                f"@currency_rates.{self.reporting_currency}: the reporting currency's rate must be 1, "
                f"got {_plain(rate)}"
            )
        return self

    # -- derived values used on the hot path (computed once per Rules value) --

    @cached_property
    def version(self) -> str:
        """Content hash of the normalized rules: formatting and comments never change it."""
        digest = hashlib.sha256(canonical_json(self)).hexdigest()
        return f"r{self.rules_schema}-{digest[:12]}"

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def monetary_cents(self) -> tuple[int, int, int, int]:
        return tuple(int(x * 100) for x in self.scores.monetary.thresholds)  # type: ignore[return-value]

    @cached_property
    def coupon_share(self) -> Fraction:
        return Fraction(self.tags.coupon_lover.min_discounted_percent) / 100

    @cached_property
    def gap_multiplier(self) -> Fraction:
        return Fraction(self.tags.overdue.gap_multiplier)


def _check_currency(code: str, what: str = "currency code") -> None:
    if not (len(code) == 3 and code.isascii() and code.isalpha() and code.isupper()):
        raise ValueError(f"{what} must be 3 uppercase letters (ISO 4217, e.g. 'USD')")


def _canon(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$dec": _plain(value)}
    if isinstance(value, dict):
        return {str(k): _canon(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    return value


def canonical_bytes(values: Any) -> bytes:
    """Sorted-key JSON of a model dump; decimals normalized so 2 == 2.0. What content
    hashes (rules and playbook versions) are taken over."""
    return orjson.dumps(_canon(values), option=orjson.OPT_SORT_KEYS)


def canonical_json(rules: Rules) -> bytes:
    """The rules' values as :func:`canonical_bytes`."""
    return canonical_bytes(rules.model_dump(mode="python"))
