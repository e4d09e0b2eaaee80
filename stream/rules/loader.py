"""Reading and writing the rules file (TOML, stdlib ``tomllib``).

Why the error handling is this careful: the person fixing a rules file is usually not a
developer. Every problem is reported as ``<file>: <field path>: <what is wrong>``
(``rules.toml: scores.recency: thresholds must increase (30, 90, 80, 365)``), TOML syntax
errors as ``<file>: line <n>: ...``, and unknown keys are errors, so a misspelt key can
never silently fall back to a default.

Keys left out of a file take the spec's defaults, so a file may be as small as
``timezone = "Europe/Berlin"``.
"""

from __future__ import annotations

import json
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ValidationError

from .model import Rules, RulesError, _plain

DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.toml")


def load_rules(path: str | Path | None = None) -> Rules:
    """Load and validate a rules file; ``None`` loads the shipped defaults."""
    file = Path(path) if path is not None else DEFAULT_RULES_PATH
    name = str(path) if path is not None else str(DEFAULT_RULES_PATH)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise RulesError(f"{name}: cannot read rules file: {exc.strerror or exc}") from None
    return parse_rules(raw, name)


def parse_rules(data: bytes | str, name: str = "rules.toml") -> Rules:
    """Validate rules from TOML text; ``name`` is used in error messages."""
    text = data.decode("utf-8", errors="strict") if isinstance(data, bytes) else data
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"at line (\d+)", msg)
        where = f"line {m.group(1)}: " if m else ""
        raise RulesError(f"{name}: {where}invalid TOML: {msg}") from None
    try:
        return Rules.model_validate(doc)
    except ValidationError as exc:
        raise RulesError(error_lines(name, exc, _describe)) from None


def error_lines(name: str, exc: ValidationError, describe: Callable[[dict[str, Any]], str]) -> str:
    """One ``<file>: <field>: <reason>`` line per distinct problem pydantic found."""
    lines: list[str] = []
    for err in exc.errors():
        line = f"{name}: {describe(err)}"
        if line not in lines:
            lines.append(line)
    return "\n".join(lines)


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Rules
    for part in loc:
        field = model.model_fields.get(str(part)) if isinstance(part, str) else None
        ann = field.annotation if field is not None else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return None
    return model


def _expected_len(loc: tuple[Any, ...]) -> str:
    parent = _model_at(loc[:-1])
    field = parent.model_fields.get(str(loc[-1])) if parent is not None and loc else None
    args = getattr(field.annotation, "__args__", ()) if field is not None else ()
    if args and Ellipsis not in args:
        return f"needs exactly {len(args)}"
    return "wrong length"


def _describe(err: dict[str, Any]) -> str:
    loc = tuple(err.get("loc", ()))
    msg = str(err.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    etype = err.get("type")
    if etype == "missing" and loc and isinstance(loc[-1], int):
        # A fixed-length list (thresholds, grid rows) that is too short.
        loc = loc[:-1]
        msg = f"too few values ({_expected_len(loc)})"
    elif etype == "too_long":
        msg = f"too many values ({_expected_len(loc)})"
    elif etype in ("model_type", "dict_type"):
        msg = "must be a table (a [section] or {key = value, ...})"
    if etype == "extra_forbidden":
        parent = _model_at(loc[:-1])
        known = ", ".join(parent.model_fields) if parent is not None else ""
        msg = f"unknown key (known keys here: {known})" if known else "unknown key"
    if msg.startswith("@"):
        # A model validator naming a sub-field: "@r3[2]: unknown segment ..."
        sub, _, rest = msg[1:].partition(": ")
        base = _loc_to_path(loc)
        joined = f"{base}.{sub}" if base and not sub.startswith("[") else f"{base}{sub}"
        return f"{joined}: {rest}"
    path = _loc_to_path(loc)
    return f"{path}: {msg}" if path else msg


# --- rendering ---------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        text = _plain(value)
        # A TOML float must survive float(); quote anything a double cannot carry exactly.
        return text if Decimal(str(float(text))) == value else json.dumps(text)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot render {type(value).__name__} as TOML")


def render_rules_toml(rules: Rules) -> str:
    """A complete, commented rules file holding ``rules``; ``load(render(x)) == x``."""
    s = rules.scores
    t = rules.tags
    g = rules.segments
    v = _toml_value
    rates = "".join(f"{code} = {v(rate)}\n" for code, rate in sorted(rules.currency_rates.items()))
    if not rates:
        rates = "# EUR = 1.08   (example: 1 EUR counts as 1.08 in the reporting currency)\n"
    names = "".join(f"    {v(n)},\n" for n in g.names)
    return f"""\
# Segmentation rules.
#
# Every number below is a default of the segmentation contract that you may change.
# Keys you leave out take the default; unknown keys are rejected (so typos are caught).
# Changing any value changes the rules version stamped on every profile and change event.
# Check a file with:  segments rules show --rules <file>

# Format version of this file. Leave at 1.
rules_schema = {v(rules.rules_schema)}

# The business time zone (IANA name, e.g. "UTC", "Europe/Berlin", "America/New_York").
# Days ("recency 30 days", "orders of the last 730 days") are calendar days in this zone,
# and day-based changes take effect at 00:00 local time.
timezone = {v(rules.timezone)}

# How many days of orders count for frequency and monetary (730 = two years).
# An order placed on day d stops counting at 00:00 on day d + window_days.
window_days = {v(rules.window_days)}

# The currency all amounts (order totals, monetary thresholds) are expressed in.
reporting_currency = {v(rules.reporting_currency)}

# Input events larger than this many bytes are rejected (sent to the dead-letter topic).
max_event_bytes = {v(rules.max_event_bytes)}

# Exchange rates into the reporting currency. Orders in another currency are rejected
# unless a rate for that currency is listed here. Codes are 3 uppercase letters.
[currency_rates]
{rates}
# ---------------------------------------------------------------------------------------
# Scores: each customer with an order gets R (recency), F (frequency), M (monetary) from
# 1 (worst) to 5 (best). Each list gives the limits for scores 5, 4, 3 and 2; anything
# beyond the last limit scores 1.

[scores.recency]
# Days since the last order. R = 5 if at most the 1st number, 4 if at most the 2nd,
# 3 if at most the 3rd, 2 if at most the 4th, otherwise 1. Must increase.
thresholds = {v(s.recency.thresholds)}

[scores.frequency]
# Orders within the window. F = 5 if at least the 1st number, 4 if at least the 2nd,
# 3 if at least the 3rd, 2 if at least the 4th, otherwise 1. Must decrease.
thresholds = {v(s.frequency.thresholds)}

[scores.monetary]
# Money spent within the window (after refunds, reporting currency, cents allowed).
# M = 5 if at least the 1st amount ... 2 if at least the 4th, otherwise 1. Must decrease.
thresholds = {v(s.monetary.thresholds)}

# ---------------------------------------------------------------------------------------
# Segments: the customer's R score picks a row, FM = mean of F and M (halves rounded up)
# picks the column. Each row lists the segment for FM = 1, 2, 3, 4, 5.
# Every name used in a row must be listed in `names` (this catches typos).
[segments]
names = [
{names}]
r5 = {v(g.r5)}
r4 = {v(g.r4)}
r3 = {v(g.r3)}
r2 = {v(g.r2)}
r1 = {v(g.r1)}

# ---------------------------------------------------------------------------------------
# Behavioural tags. A customer can hold several tags at once.

[tags.one_time_buyer]
# Exactly one order ever, and it was at least this many days ago.
min_recency_days = {v(t.one_time_buyer.min_recency_days)}

[tags.repeat_purchaser]
# At least `min_orders` orders ever, the last one at most `max_recency_days` days ago.
min_orders = {v(t.repeat_purchaser.min_orders)}
max_recency_days = {v(t.repeat_purchaser.max_recency_days)}

[tags.lapsed]
# Has ordered, but the last order was at least this many days ago.
min_recency_days = {v(t.lapsed.min_recency_days)}

[tags.high_spender]
# M score at least this (5 = the top monetary band).
min_m = {v(t.high_spender.min_m)}

[tags.low_spender]
# Orders often (F at least `min_f`) but spends little (M at most `max_m`).
min_f = {v(t.low_spender.min_f)}
max_m = {v(t.low_spender.max_m)}

[tags.coupon_lover]
# At least `min_frequency` orders in the window, and at least `min_discounted_percent`
# percent of them used a discount code or had a discount.
min_frequency = {v(t.coupon_lover.min_frequency)}
min_discounted_percent = {v(t.coupon_lover.min_discounted_percent)}

[tags.overdue]
# A regular customer (at least `min_orders` orders ever, last one at most
# `max_recency_days` days ago) whose current pause is longer than both `min_days` and
# `gap_multiplier` times their average gap between orders.
min_days = {v(t.overdue.min_days)}
gap_multiplier = {v(t.overdue.gap_multiplier)}
max_recency_days = {v(t.overdue.max_recency_days)}
min_orders = {v(t.overdue.min_orders)}

[tags.cart_abandoner]
# The cart holds something, and no order followed: tagged from `after_hours` hours after
# the last cart activity until `until_days` days after it.
after_hours = {v(t.cart_abandoner.after_hours)}
until_days = {v(t.cart_abandoner.until_days)}

[tags.prospect]
# Never ordered, but used the cart or opened an email within the last `window_days` days
# (machine opens by mail privacy proxies do not count).
window_days = {v(t.prospect.window_days)}

[tags.engaged_non_buyer]
# Opened at least `min_opens` emails within the last `opens_window_days` days, but has
# not ordered within the last `no_order_days` days.
min_opens = {v(t.engaged_non_buyer.min_opens)}
opens_window_days = {v(t.engaged_non_buyer.opens_window_days)}
no_order_days = {v(t.engaged_non_buyer.no_order_days)}
"""
