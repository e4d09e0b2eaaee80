"""The policies as pure functions of instants (epoch ms): holdout, quiet hours, caps, cooldowns.

Kept apart from ``decide`` so each rule can be tested at its edges on its own.

Window conventions (the edges the tests pin):

- frequency cap ``{max: N, per_hours: H}``: in every half-open window ``[t, t + H)``
  at most N marketing actions of the channel, counted by ``not_before``. Two emails
  exactly 16 h apart are allowed, 16 h - 1 ms apart are not. Checked both ways in time,
  because a delayed action (the second cart reminder) can be scheduled before an
  earlier one.
- cooldown ``cooldown_days: D``: an action is not scheduled again while a scheduled one
  is less than D x 24 h away (fixed days of 24 h, not calendar days).
- quiet hours ``start``-``end``: local clock times in the customer's zone; ``start`` is
  quiet, ``end`` is not. An instant inside the window moves to the window's end, the
  first instant whose local time is ``end`` (or later, when ``end`` falls in a DST gap).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE_MS = 60_000


def holdout_hash(playbook_name: str, customer_id: str) -> int:
    """The first 64 bits of sha256(``"<playbook>|<customer>"``): stable across processes,
    machines and Python versions (unlike ``hash()``), and independent per playbook."""
    digest = hashlib.sha256(f"{playbook_name}|{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def in_holdout(playbook_name: str, customer_id: str, threshold: int) -> bool:
    """``threshold`` is ``Playbook.holdout_threshold`` (share x 2**64, rounded up)."""
    return holdout_hash(playbook_name, customer_id) < threshold


def _local(ms: int, zone: ZoneInfo) -> datetime:
    return (_EPOCH + timedelta(milliseconds=ms)).astimezone(zone)


def _instant(local: datetime) -> int:
    return (local - _EPOCH) // timedelta(milliseconds=1)


def _wall_to_instant(day: date, minute_of_day: int, zone: ZoneInfo) -> int:
    """The first instant whose local wall time in ``zone`` is ``day`` at ``minute_of_day``,
    or, when that time does not exist (a DST gap), the first instant after it."""
    naive = datetime(day.year, day.month, day.day, minute_of_day // 60, minute_of_day % 60)
    candidates = [_instant(naive.replace(tzinfo=zone, fold=fold)) for fold in (0, 1)]
    real = [c for c in candidates if _local(c, zone).replace(tzinfo=None) == naive]
    if real:
        return min(real)  # a repeated hour: its first occurrence
    # In a gap: the fold-1 reading lies before the gap, the fold-0 reading after it.
    # Binary-search the first instant whose local wall time has reached ``naive``.
    lo, hi = min(candidates), max(candidates)  # local(lo) < naive <= local(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _local(mid, zone).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return hi


def quiet_release(ms: int, zone: ZoneInfo, start_minute: int, end_minute: int) -> int:
    """``ms`` if its local time in ``zone`` is outside the quiet window, else the instant
    the window ends. ``start_minute > end_minute`` is a window across midnight."""
    local = _local(ms, zone)
    # Milliseconds into the local day, compared with the window's minutes: 20:59:59.999 is
    # before a 21:00 start; 07:59:59.999 is still inside a window ending at 08:00.
    in_day = ((local.hour * 60 + local.minute) * 60 + local.second) * 1000 + local.microsecond // 1000
    start, end = start_minute * _MINUTE_MS, end_minute * _MINUTE_MS
    if start < end:
        if not (start <= in_day < end):
            return ms
        release_day = local.date()
    else:
        if in_day >= start:
            release_day = local.date() + timedelta(days=1)
        elif in_day < end:
            release_day = local.date()
        else:
            return ms
    return max(ms, _wall_to_instant(release_day, end_minute, zone))


def exceeds_cap(scheduled: Sequence[int], candidate: int, max_count: int, window_ms: int) -> bool:
    """Would one more action at ``candidate`` put more than ``max_count`` actions into
    some window ``[t, t + window_ms)``? ``scheduled`` is sorted.

    The fullest window holding the candidate starts at one of the points in
    ``(candidate - window_ms, candidate]`` (slide any window right until its start meets
    a point: nothing leaves, things may enter), so only those starts are checked.
    """
    points = sorted((*scheduled, candidate))
    for start in points:
        if candidate - window_ms < start <= candidate:
            inside = bisect_left(points, start + window_ms) - bisect_left(points, start)
            if inside > max_count:
                return True
    return False


def in_cooldown(scheduled: Sequence[int], candidate: int, cooldown_ms: int) -> bool:
    """Is a scheduled run of the action less than ``cooldown_ms`` away from ``candidate``?"""
    return any(abs(candidate - t) < cooldown_ms for t in scheduled)
