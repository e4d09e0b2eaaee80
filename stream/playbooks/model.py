"""The playbook model: which actions a segment or tag change triggers, and the policies.

Why a typed model: playbooks are edited by marketers, and a typo (``enter_segment: At
Rsk``) or a nonsense value (a cap of 0 emails, quiet hours ``"25:00"``) must stop
start-up naming the field, not silently send nothing (or everything). Pydantic gives the
field paths; checks that span several fields (a recheck that needs a segment trigger,
unique action names) are model validators whose message starts with ``@<sub-path>: ``
when they point at a sub-field, the convention of ``stream.rules``.

Segment names are checked against the rules in effect (a rules file may rename
segments) and the default time zone is the rules' business zone: the loader passes both
in the validation context (``{"segments": (...), "default_timezone": "..."}``); without a
context the spec's names and the default rules' zone apply.

Durations in the file are hours or days as numbers (``per_hours: 16``, ``delay_hours:
0.5``); they are kept as ``Decimal`` (exact, so the version hash does not depend on how
a float prints) and exposed in milliseconds, which must be whole.

The model is frozen: one ``Playbook`` is shared by every decision and its ``version`` (a
content hash) must never drift from its content.
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from stream.rules import SEGMENT_NAMES, TAG_NAMES, Rules
from stream.rules.model import Number, canonical_bytes

PLAYBOOK_SCHEMA = 1

CHANNELS: tuple[str, ...] = ("email", "sms", "ads_audience", "crm_task")
Channel = Literal["email", "sms", "ads_audience", "crm_task"]

# Channels that reach the customer with a message: marketing unless the file says
# otherwise. Audience updates and CRM tasks are bookkeeping by default.
MESSAGE_CHANNELS: frozenset[str] = frozenset(("email", "sms"))

# Send-time checks the sender performs before delivering (the engine cannot know, at
# decision time, what the customer will do before ``not_before``).
RECHECKS: tuple[str, ...] = ("ordered_since_trigger", "left_trigger_segment", "left_trigger_tag")
Recheck = Literal["ordered_since_trigger", "left_trigger_segment", "left_trigger_tag"]

SKIP_REASONS: tuple[str, ...] = ("frequency_cap", "cooldown", "suppressed", "backfill", "rules_changed")

WILDCARD = "*"
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

# Names end up in action ids, metric labels and template file names: keep them plain.
_NAME = r"^[a-z][a-z0-9_]{0,63}$"
_TEMPLATE = r"^[a-z0-9][a-z0-9_-]{0,127}$"
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")

ActionName = Annotated[str, Field(pattern=_NAME)]
TemplateName = Annotated[str, Field(pattern=_TEMPLATE)]
PosInt = Annotated[StrictInt, Field(ge=1)]


class PlaybookError(ValueError):
    """An invalid playbook file. The message names the file, the field path and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _whole_ms(value: Decimal, unit_ms: int, what: str) -> int:
    ms = value * unit_ms
    if ms != ms.to_integral_value():
        raise ValueError(f"{what} must be a whole number of milliseconds")
    return int(ms)


def _duration(unit_ms: int, unit: str, *, zero_ok: bool = False, hint: str = "") -> AfterValidator:
    """A duration in hours or days: positive (or >= 0), a whole number of milliseconds."""

    def check(value: Decimal, info: ValidationInfo) -> Decimal:
        if value < 0 or (value == 0 and not zero_ok):
            raise ValueError(f"must be {'>=' if zero_ok else '>'} 0 {unit}{hint}")
        _whole_ms(value, unit_ms, info.field_name or unit)
        return value

    return AfterValidator(check)


Hours = Annotated[Number, _duration(HOUR_MS, "hours")]
HoursOrZero = Annotated[Number, _duration(HOUR_MS, "hours", zero_ok=True)]
CooldownDays = Annotated[Number, _duration(DAY_MS, "days", hint=" (leave it out for no cooldown)")]


def _segments(info: ValidationInfo) -> tuple[str, ...]:
    context = info.context or {}
    return tuple(context.get("segments", SEGMENT_NAMES))


def _check_segment(name: Any, info: ValidationInfo, wildcard: bool) -> Any:
    if name is None or (wildcard and name == WILDCARD):
        return name
    known = _segments(info)
    if name not in known:
        extra = ' or "*"' if wildcard else ""
        raise ValueError(f"unknown segment {name!r} (known: {', '.join(known)}{extra})")
    return name


def _check_tag(name: str) -> str:
    if name not in TAG_NAMES:
        raise ValueError(f"unknown tag {name!r} (known: {', '.join(TAG_NAMES)})")
    return name


# --- triggers ------------------------------------------------------------------------------

TriggerKind = Literal["enter_segment", "transition", "enter_tag", "leave_tag"]
_TRIGGER_FORMS = (
    '{enter_segment: <segment>}, {from: <segment|"*"|null>, to: <segment|"*"|null>}, '
    "{enter_tag: <tag>} or {leave_tag: <tag>}"
)


class Trigger(_Strict):
    """What change fires an action. Exactly one form per trigger:

    - ``{enter_segment: S}``: a segment change whose ``to`` is S;
    - ``{from: A, to: B}``: a segment change from A to B; ``"*"`` matches any segment
      and also none, ``null`` matches "no segment" (a first order, or a refund to zero);
    - ``{enter_tag: T}`` / ``{leave_tag: T}``: tag T appeared / disappeared.

    ``kind`` is derived from the keys given (never written in the file).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    kind: TriggerKind
    enter_segment: str | None = None
    from_segment: str | None = Field(default=None, alias="from")
    to_segment: str | None = Field(default=None, alias="to")
    enter_tag: str | None = None
    leave_tag: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _form(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data  # pydantic reports "must be a table"
        if "kind" in data:
            raise ValueError(f"'kind' is not written in the file; a trigger is one of {_TRIGGER_FORMS}")
        keys = set(data)
        if keys == {"enter_segment"}:
            kind = "enter_segment"
        elif keys == {"from", "to"}:
            kind = "transition"
        elif keys == {"enter_tag"}:
            kind = "enter_tag"
        elif keys == {"leave_tag"}:
            kind = "leave_tag"
        else:
            given = ", ".join(sorted(map(str, keys))) or "nothing"
            raise ValueError(f"must be exactly one of {_TRIGGER_FORMS} (got {given})")
        return {**data, "kind": kind}

    @field_validator("enter_segment")
    @classmethod
    def _enter_segment(cls, v: str | None, info: ValidationInfo) -> str | None:
        return _check_segment(v, info, wildcard=False)

    @field_validator("from_segment", "to_segment")
    @classmethod
    def _transition(cls, v: str | None, info: ValidationInfo) -> str | None:
        return _check_segment(v, info, wildcard=True)

    @field_validator("enter_tag", "leave_tag")
    @classmethod
    def _tag(cls, v: str | None) -> str | None:
        return None if v is None else _check_tag(v)

    @model_validator(mode="after")
    def _possible(self) -> Trigger:
        if self.kind == "enter_segment" and self.enter_segment is None:
            raise ValueError("@enter_segment: must name a segment")
        if self.kind == "enter_tag" and self.enter_tag is None:
            raise ValueError("@enter_tag: must name a tag")
        if self.kind == "leave_tag" and self.leave_tag is None:
            raise ValueError("@leave_tag: must name a tag")
        if (
            self.kind == "transition"
            and self.from_segment == self.to_segment
            and self.from_segment != WILDCARD
        ):
            raise ValueError(f"from and to are both {self.from_segment!r}: such a change never happens")
        return self

    def matches(self, change: dict[str, Any]) -> bool:
        """Does segment-change record ``change`` (wire form) fire this trigger?"""
        if change["kind"] == "segment":
            if self.kind == "enter_segment":
                return change["to"] == self.enter_segment
            if self.kind == "transition":
                return (self.from_segment == WILDCARD or change["from"] == self.from_segment) and (
                    self.to_segment == WILDCARD or change["to"] == self.to_segment
                )
            return False
        if self.kind == "enter_tag":
            return change["entered"] is True and change["tag"] == self.enter_tag
        if self.kind == "leave_tag":
            return change["entered"] is False and change["tag"] == self.leave_tag
        return False

    @property
    def segment_target(self) -> str | None:
        """The one segment this trigger moves the customer into, if there is one."""
        if self.kind == "enter_segment":
            return self.enter_segment
        if self.kind == "transition" and self.to_segment not in (None, WILDCARD):
            return self.to_segment
        return None

    def describe(self) -> str:
        """The trigger as one would say it: ``enter segment At Risk``, ``Champions -> *``."""
        if self.kind == "enter_segment":
            return f"enter segment {self.enter_segment}"
        if self.kind == "transition":
            return f"{self.from_segment} -> {self.to_segment}"
        if self.kind == "enter_tag":
            return f"enter tag {self.enter_tag}"
        return f"leave tag {self.leave_tag}"


# --- actions -------------------------------------------------------------------------------


class Offer(_Strict):
    """An incentive: ``type`` says what (``percent_off``, ``free_shipping``, ...), ``value``
    how much (a number, a code or label, or null when the type says it all)."""

    type: ActionName
    value: Any = None

    @field_validator("value")
    @classmethod
    def _scalar(cls, v: Any) -> Any:
        if v is None or isinstance(v, str) or (isinstance(v, (int, float)) and not isinstance(v, bool)):
            return v
        raise ValueError("must be a number, a string or null")


class Action(_Strict):
    """One action of a playbook, fired by its trigger."""

    name: ActionName
    trigger: Trigger
    channel: Channel
    template: TemplateName | None = None
    offer: Offer | None = None
    params: dict[str, JsonValue] = Field(default_factory=dict)
    cooldown_days: CooldownDays | None = None
    delay_hours: HoursOrZero = Decimal(0)
    expires_after_hours: Hours
    marketing: StrictBool
    recheck: tuple[Recheck, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _marketing_default(cls, data: Any) -> Any:
        # Emails and SMS are marketing unless said otherwise; audience updates and CRM
        # tasks are not. Resolved here so the value is part of the content hash.
        if isinstance(data, dict) and "marketing" not in data and isinstance(data.get("channel"), str):
            return {**data, "marketing": data["channel"] in MESSAGE_CHANNELS}
        return data

    @field_validator("recheck")
    @classmethod
    def _unique_rechecks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        dup = sorted({r for r in v if v.count(r) > 1})
        if dup:
            raise ValueError(f"listed twice: {', '.join(dup)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Action:
        if self.channel in MESSAGE_CHANNELS and self.template is None:
            raise ValueError(f"@template: {self.channel} actions must name their template")
        if "left_trigger_segment" in self.recheck and self.trigger.segment_target is None:
            raise ValueError(
                "@recheck: left_trigger_segment needs a trigger that enters one segment "
                "(enter_segment, or from/to with a segment as 'to')"
            )
        if "left_trigger_tag" in self.recheck and self.trigger.kind != "enter_tag":
            raise ValueError("@recheck: left_trigger_tag needs an enter_tag trigger")
        return self

    @cached_property
    def delay_ms(self) -> int:
        return _whole_ms(self.delay_hours, HOUR_MS, "delay_hours")

    @cached_property
    def expires_after_ms(self) -> int:
        return _whole_ms(self.expires_after_hours, HOUR_MS, "expires_after_hours")

    @cached_property
    def cooldown_ms(self) -> int | None:
        return None if self.cooldown_days is None else _whole_ms(self.cooldown_days, DAY_MS, "cooldown_days")


# --- policies ------------------------------------------------------------------------------


class Holdout(_Strict):
    """Share of customers (per playbook, by a stable hash) who get no action at all."""

    share: Number = Decimal("0.10")

    @field_validator("share")
    @classmethod
    def _share(cls, v: Decimal) -> Decimal:
        if not (0 <= v <= 1):
            raise ValueError("must be between 0 and 1 (0.10 = 10% of customers)")
        return v


class FrequencyCap(_Strict):
    """At most ``max`` marketing actions of a channel in any window of ``per_hours``."""

    max: PosInt
    per_hours: Hours

    @cached_property
    def window_ms(self) -> int:
        return _whole_ms(self.per_hours, HOUR_MS, "per_hours")


class QuietHours(_Strict):
    """Local clock window (customer's zone) in which ``channels`` are held, not dropped.

    ``start`` > ``end`` spans midnight (21:00-08:00). ``start`` is quiet, ``end`` is not.
    """

    start: str = "21:00"
    end: str = "08:00"
    channels: tuple[Channel, ...] = ("email", "sms")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, v: Any) -> Any:
        if not isinstance(v, str):
            raise ValueError(f'must be a quoted "HH:MM" time (got {v!r}), e.g. "21:00"')
        if not _CLOCK.match(v):
            raise ValueError(f'must be "HH:MM" on a 24-hour clock, 00:00 to 23:59 (got {v!r})')
        return v

    @model_validator(mode="after")
    def _window(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError(f"start and end are both {self.start}: leave quiet_hours out (null) for none")
        return self

    @staticmethod
    def _minutes(text: str) -> int:
        hours, minutes = text.split(":")
        return int(hours) * 60 + int(minutes)

    @cached_property
    def start_minute(self) -> int:
        return self._minutes(self.start)

    @cached_property
    def end_minute(self) -> int:
        return self._minutes(self.end)


class Backfill(_Strict):
    """Changes older than ``horizon_hours`` (replays), flagged ``backfill``, or caused by a
    change of the rules file (cause ``rules``) trigger nothing, unless ``act`` is true."""

    horizon_hours: Hours = Decimal(48)
    act: StrictBool = False

    @cached_property
    def horizon_ms(self) -> int:
        return _whole_ms(self.horizon_hours, HOUR_MS, "horizon_hours")


def _default_caps() -> dict[str, FrequencyCap]:
    return {"email": FrequencyCap(max=1, per_hours=Decimal(16))}


class Policies(_Strict):
    # None in the file: the rules' business zone (filled in on load, so it is hashed).
    timezone: str | None = Field(default=None, validate_default=True)
    frequency_caps: dict[Channel, FrequencyCap] = Field(default_factory=_default_caps)
    quiet_hours: QuietHours | None = QuietHours()
    backfill: Backfill = Backfill()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None, info: ValidationInfo) -> str:
        if v is None:
            v = (info.context or {}).get("default_timezone") or Rules().timezone
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):
            raise ValueError(f"unknown IANA time zone {v!r} (e.g. 'UTC', 'Europe/Berlin')") from None
        return v


# --- the whole file ------------------------------------------------------------------------


class Playbook(_Strict):
    playbook_schema: StrictInt = PLAYBOOK_SCHEMA
    name: ActionName
    holdout: Holdout = Holdout()
    policies: Policies
    actions: tuple[Action, ...]

    @model_validator(mode="before")
    @classmethod
    def _policies_from_context(cls, data: Any) -> Any:
        # Validate a missing `policies` table from {} so its time zone comes from the
        # validation context (the rules' zone) rather than a pre-built default.
        if isinstance(data, dict) and "policies" not in data:
            return {**data, "policies": {}}
        return data

    @field_validator("playbook_schema")
    @classmethod
    def _schema(cls, v: int) -> int:
        if v != PLAYBOOK_SCHEMA:
            raise ValueError(f"unsupported playbook_schema {v} (this version reads {PLAYBOOK_SCHEMA})")
        return v

    @field_validator("actions")
    @classmethod
    def _some(cls, v: tuple[Action, ...]) -> tuple[Action, ...]:
        if not v:
            raise ValueError("must list at least one action")
        return v

    @model_validator(mode="after")
    def _unique_names(self) -> Playbook:
        first: dict[str, int] = {}
        for i, action in enumerate(self.actions):
            if action.name in first:
                raise ValueError(f"@actions[{i}].name: duplicate action name {action.name!r} (also actions[{first[action.name]}])")
            first[action.name] = i
        return self

    # -- derived values (computed once per Playbook value) --

    @cached_property
    def version(self) -> str:
        """Content hash of the normalized playbook: formatting and comments never change it."""
        digest = hashlib.sha256(canonical_json(self)).hexdigest()
        return f"p{self.playbook_schema}-{digest[:12]}"

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.policies.timezone)  # type: ignore[arg-type]  # filled on validation

    @cached_property
    def holdout_threshold(self) -> int:
        """A customer is in the holdout when the first 64 bits of its hash are below this
        (exact: ``ceil(share * 2**64)``, so share 0 holds out nobody and 1 everybody)."""
        share = Fraction(self.holdout.share)
        return -(-share.numerator * 2**64 // share.denominator)

    @cached_property
    def cap_windows(self) -> dict[str, int]:
        """Channel -> frequency-cap window in ms, for the capped channels."""
        return {ch: cap.window_ms for ch, cap in self.policies.frequency_caps.items()}

    @cached_property
    def cooldown_windows(self) -> dict[str, int]:
        """Action name -> cooldown in ms, for the actions with a cooldown."""
        return {a.name: a.cooldown_ms for a in self.actions if a.cooldown_ms is not None}

    def with_backfill_act(self, act: bool) -> Playbook:
        """This playbook with ``policies.backfill.act`` overridden (``--act-on-backfill``);
        a different playbook, so a different version."""
        backfill = self.policies.backfill.model_copy(update={"act": act})
        copy = self.model_copy(update={"policies": self.policies.model_copy(update={"backfill": backfill})})
        # model_copy copies the instance dict, cached derived values included.
        for name in ("version", "zone", "holdout_threshold", "cap_windows", "cooldown_windows"):
            copy.__dict__.pop(name, None)
        return copy

    def actions_for(self, change: dict[str, Any]) -> list[Action]:
        """The actions whose trigger ``change`` (wire form) fires, in file order."""
        return [a for a in self.actions if a.trigger.matches(change)]


def email_templates(playbook: Playbook) -> frozenset[str]:
    """Names of the email templates ``playbook`` uses (the sender must have each one)."""
    return frozenset(a.template for a in playbook.actions if a.channel == "email" and a.template is not None)


def canonical_json(playbook: Playbook) -> bytes:
    """Sorted-key JSON of the playbook's values (file keys: ``from``/``to``); decimals
    normalized so 16 == 16.0. Action order is kept: it is the order records are emitted in."""
    return canonical_bytes(playbook.model_dump(mode="python", by_alias=True))
