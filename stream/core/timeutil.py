"""Business-day math (spec §1), DST-safe, with ``zoneinfo``.

Why a module of its own: every day-based rule ("recency <= 30", "orders of the last
730 days", "00:00 of the first day it holds") goes through two functions, and getting
them wrong around DST transitions would make the stream and the batch command disagree.

- ``day_of(ms, zone)``: the business day of an instant, as a day number (days since
  1970-01-01 of the *local* calendar date). Differences of day numbers are whole days
  between calendar dates, independent of 23/25-hour DST days.
- ``day_start_ms(day, zone)``: the first instant of that local date: 00:00, or, when
  00:00 does not exist (a DST gap at midnight), the first instant that does.

Why ``calendar(zone)``: the engine calls these a few times per order per evaluation, and
a ``zoneinfo`` conversion costs microseconds. ``calendar(zone)`` returns the two functions
specialised for the zone once: plain integer arithmetic for UTC, memoised conversions for
any other zone (the same instants and days recur constantly: order instants, day starts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Callable
from zoneinfo import ZoneInfo

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_UTC_KEYS = frozenset(("UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu"))


def _is_utc(zone: ZoneInfo) -> bool:
    return zone.key in _UTC_KEYS


@lru_cache(maxsize=1 << 16)
def _day_of_tz(ms: int, zone: ZoneInfo) -> int:
    local = (_EPOCH + timedelta(milliseconds=ms)).astimezone(zone)
    return local.date().toordinal() - _EPOCH_ORDINAL


def day_of(ms: int, zone: ZoneInfo) -> int:
    """Business day number of instant ``ms`` (epoch ms) in ``zone``."""
    if zone.key in _UTC_KEYS:
        return ms // DAY_MS
    return _day_of_tz(ms, zone)


@lru_cache(maxsize=1 << 14)
def day_start_ms(day: int, zone: ZoneInfo) -> int:
    """Epoch ms of the first instant of business day ``day`` in ``zone``."""
    if _is_utc(zone):
        return day * DAY_MS
    d = date.fromordinal(day + _EPOCH_ORDINAL)
    naive = datetime(d.year, d.month, d.day)
    candidates = []
    for fold in (0, 1):
        aware = naive.replace(tzinfo=zone, fold=fold)
        candidates.append(int((aware - _EPOCH) // timedelta(milliseconds=1)))
    guess = min(candidates)
    if day_of(guess, zone) == day and day_of(guess - 1, zone) == day - 1:
        return guess
    # 00:00 does not exist (or maps oddly): binary-search the first instant of the day.
    lo, hi = guess - 2 * DAY_MS, guess + 2 * DAY_MS  # day_of(lo) < day <= day_of(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if day_of(mid, zone) >= day:
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True, slots=True)
class Calendar:
    """``day_of`` and ``day_start_ms`` bound to one zone (same results, less overhead)."""

    zone: ZoneInfo
    day_of: Callable[[int], int]  # instant (epoch ms) -> business day number
    day_start: Callable[[int], int]  # business day number -> its first instant (epoch ms)


def _utc_day_of(ms: int) -> int:
    return ms // DAY_MS


def _utc_day_start(day: int) -> int:
    return day * DAY_MS


@lru_cache(maxsize=64)
def calendar(zone: ZoneInfo) -> Calendar:
    """The business calendar of ``zone``: cached, so cheap to ask for on every call."""
    if _is_utc(zone):
        return Calendar(zone, _utc_day_of, _utc_day_start)

    # Per-zone memo tables (the module-level caches are keyed by (value, zone): one more
    # tuple and hash per call). Sizes bound memory; misses fall back to the exact functions.
    @lru_cache(maxsize=1 << 16)
    def zone_day_of(ms: int) -> int:
        return _day_of_tz(ms, zone)

    @lru_cache(maxsize=1 << 14)
    def zone_day_start(day: int) -> int:
        return day_start_ms(day, zone)

    return Calendar(zone, zone_day_of, zone_day_start)


@lru_cache(maxsize=1 << 12)
def _utc_date_text(day: int) -> str:
    d = date.fromordinal(day + _EPOCH_ORDINAL)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


@lru_cache(maxsize=1 << 16)
def rfc3339_ms(ms: int) -> str:
    """``1997-01-01T00:00:00.000Z``: RFC 3339, UTC, milliseconds.

    Memoised and computed from the day number (a ``datetime`` per call was a visible
    share of emitting a change): the same instants recur in every change of a customer."""
    day, in_day = divmod(ms, DAY_MS)
    seconds, millis = divmod(in_day, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_utc_date_text(day)}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


def parse_rfc3339_ms(text: str) -> int:
    """Epoch ms of an RFC 3339 timestamp with offset (tests and tooling convenience)."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"timestamp without offset: {text!r}")
    return int((dt - _EPOCH) // timedelta(milliseconds=1))
