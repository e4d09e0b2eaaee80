"""The policy functions at their edges: quiet hours (incl. midnight and DST), caps,
cooldowns, holdout."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from stream.core.timeutil import HOUR_MS, parse_rfc3339_ms as ms
from stream.playbooks.policies import exceeds_cap, holdout_hash, in_cooldown, in_holdout, quiet_release

UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NIGHT = (21 * 60, 8 * 60)  # 21:00-08:00, across midnight
DAY = (12 * 60, 14 * 60)  # 12:00-14:00


# --- quiet hours ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "released"),
    [
        ("2024-03-05T20:59:59.999Z", "2024-03-05T20:59:59.999Z"),  # a millisecond before the start
        ("2024-03-05T21:00:00.000Z", "2024-03-06T08:00:00.000Z"),  # the start minute is quiet
        ("2024-03-05T23:59:59.999Z", "2024-03-06T08:00:00.000Z"),  # before midnight: next morning
        ("2024-03-06T00:00:00.000Z", "2024-03-06T08:00:00.000Z"),  # after midnight: the same morning
        ("2024-03-06T07:59:59.999Z", "2024-03-06T08:00:00.000Z"),  # the last quiet millisecond
        ("2024-03-06T08:00:00.000Z", "2024-03-06T08:00:00.000Z"),  # the end minute is not quiet
        ("2024-03-06T12:00:00.000Z", "2024-03-06T12:00:00.000Z"),
        ("2024-12-31T22:00:00.000Z", "2025-01-01T08:00:00.000Z"),  # across a year
    ],
)
def test_overnight_window_in_utc(instant: str, released: str) -> None:
    assert quiet_release(ms(instant), UTC, *NIGHT) == ms(released)


@pytest.mark.parametrize(
    ("instant", "released"),
    [
        ("2024-03-05T11:59:59.999Z", "2024-03-05T11:59:59.999Z"),
        ("2024-03-05T12:00:00.000Z", "2024-03-05T14:00:00.000Z"),
        ("2024-03-05T13:59:59.999Z", "2024-03-05T14:00:00.000Z"),
        ("2024-03-05T14:00:00.000Z", "2024-03-05T14:00:00.000Z"),
        ("2024-03-05T23:00:00.000Z", "2024-03-05T23:00:00.000Z"),
    ],
)
def test_daytime_window(instant: str, released: str) -> None:
    assert quiet_release(ms(instant), UTC, *DAY) == ms(released)


def test_window_is_in_the_given_zone() -> None:
    # 20:30 UTC is 21:30 in Berlin (CET, +1): quiet there, until 08:00 CET = 07:00 UTC.
    assert quiet_release(ms("2024-01-15T20:30:00Z"), BERLIN, *NIGHT) == ms("2024-01-16T07:00:00Z")
    assert quiet_release(ms("2024-01-15T20:30:00Z"), UTC, *NIGHT) == ms("2024-01-15T20:30:00Z")
    # 01:00 UTC is 20:00 in New York (EST, -5): not quiet there.
    assert quiet_release(ms("2024-01-16T01:00:00Z"), NEW_YORK, *NIGHT) == ms("2024-01-16T01:00:00Z")


def test_spring_forward_night_in_berlin() -> None:
    # 2024-03-31 02:00 CET -> 03:00 CEST. Held at 22:00 CET on the 30th, released at
    # 08:00 CEST = 06:00 UTC: 9 hours later, not 10 (the night is an hour short).
    held = ms("2024-03-30T21:00:00Z")  # 22:00 CET
    released = quiet_release(held, BERLIN, *NIGHT)
    assert released == ms("2024-03-31T08:00:00+02:00") == ms("2024-03-31T06:00:00Z")
    assert released - held == 9 * HOUR_MS
    # the first instant of the morning after the jump
    assert quiet_release(ms("2024-03-31T05:59:59.999Z"), BERLIN, *NIGHT) == ms("2024-03-31T06:00:00Z")
    assert quiet_release(ms("2024-03-31T06:00:00Z"), BERLIN, *NIGHT) == ms("2024-03-31T06:00:00Z")


def test_fall_back_night_in_berlin() -> None:
    # 2024-10-27 03:00 CEST -> 02:00 CET: the night is an hour longer.
    held = ms("2024-10-26T20:00:00Z")  # 22:00 CEST
    released = quiet_release(held, BERLIN, *NIGHT)
    assert released == ms("2024-10-27T08:00:00+01:00") == ms("2024-10-27T07:00:00Z")
    assert released - held == 11 * HOUR_MS
    # both passes through the repeated 02:30 are quiet and released at the same 08:00
    first, second = ms("2024-10-27T02:30:00+02:00"), ms("2024-10-27T02:30:00+01:00")
    assert second - first == HOUR_MS
    assert quiet_release(first, BERLIN, *NIGHT) == quiet_release(second, BERLIN, *NIGHT) == released


def test_window_ending_inside_a_dst_gap_opens_when_the_clock_jumps() -> None:
    # New York 2024-03-10: 02:00 EST -> 03:00 EDT; 02:30 does not exist that night.
    released = quiet_release(ms("2024-03-10T01:30:00-05:00"), NEW_YORK, 0, 2 * 60 + 30)
    assert released == ms("2024-03-10T03:00:00-04:00") == ms("2024-03-10T07:00:00Z")


def test_window_ending_inside_a_repeated_hour_opens_at_its_first_pass() -> None:
    # New York 2024-11-03: 02:00 EDT -> 01:00 EST; 01:30 happens twice.
    released = quiet_release(ms("2024-11-03T00:30:00-04:00"), NEW_YORK, 0, 90)
    assert released == ms("2024-11-03T01:30:00-04:00")


def test_release_is_never_earlier_and_is_outside_the_window() -> None:
    start = ms("2024-03-29T00:00:00Z")
    for zone in (UTC, BERLIN, NEW_YORK):
        for step in range(0, 5 * 24 * 60, 7):  # every 7 minutes over 5 days around the DST change
            t = start + step * 60_000
            r = quiet_release(t, zone, *NIGHT)
            assert r >= t
            assert quiet_release(r, zone, *NIGHT) == r


# --- frequency cap: at most N in any [t, t + window) ----------------------------------------

WINDOW = 16 * HOUR_MS
T = ms("2024-03-01T12:00:00Z")


def test_cap_edge_is_the_window_length() -> None:
    assert not exceeds_cap([T], T + WINDOW, 1, WINDOW)
    assert exceeds_cap([T], T + WINDOW - 1, 1, WINDOW)
    # also backwards in time (a delayed action scheduled first)
    assert not exceeds_cap([T], T - WINDOW, 1, WINDOW)
    assert exceeds_cap([T], T - WINDOW + 1, 1, WINDOW)
    assert exceeds_cap([T], T, 1, WINDOW)
    assert not exceeds_cap([], T, 1, WINDOW)


def test_cap_counts_any_window_not_just_the_one_ending_now() -> None:
    # max 2: points at T and T + 10 h; a third at T + 15 h shares [T, T + 16 h) with both.
    assert exceeds_cap([T, T + 10 * HOUR_MS], T + 15 * HOUR_MS, 2, WINDOW)
    # at T + 17 h: [T + 10 h, T + 26 h) holds two, [T, T + 16 h) no longer holds it
    assert not exceeds_cap([T, T + 10 * HOUR_MS], T + 17 * HOUR_MS, 2, WINDOW)
    # a candidate between two points 20 h apart: each window holds at most 2
    assert not exceeds_cap([T, T + 20 * HOUR_MS], T + 10 * HOUR_MS, 2, WINDOW)
    assert exceeds_cap([T, T + 15 * HOUR_MS], T + 10 * HOUR_MS, 2, WINDOW)


def test_cap_check_agrees_with_brute_force() -> None:
    import random

    rng = random.Random(4)
    for _ in range(500):
        points = sorted(rng.randrange(0, 60) * HOUR_MS // 2 for _ in range(rng.randrange(0, 5)))
        cand = rng.randrange(0, 60) * HOUR_MS // 2
        max_count = rng.randrange(1, 4)
        allowed = sorted(points + [cand])
        # brute force: every window start at every half hour and every point
        starts = {p for p in allowed} | {h * HOUR_MS // 2 for h in range(-40, 100)}
        worst = max(sum(1 for p in allowed if s <= p < s + WINDOW) for s in starts if s <= cand < s + WINDOW)
        assert exceeds_cap(points, cand, max_count, WINDOW) == (worst > max_count)


# --- cooldown -------------------------------------------------------------------------------


def test_cooldown_edge() -> None:
    cool = 30 * 24 * HOUR_MS
    assert in_cooldown([T], T + cool - 1, cool)
    assert not in_cooldown([T], T + cool, cool)
    assert in_cooldown([T], T - cool + 1, cool)
    assert not in_cooldown([], T, cool)


# --- holdout --------------------------------------------------------------------------------


def test_holdout_hash_is_sha256_of_playbook_and_customer() -> None:
    expected = int.from_bytes(hashlib.sha256(b"default|cust-42").digest()[:8], "big")
    assert holdout_hash("default", "cust-42") == expected
    assert holdout_hash("other", "cust-42") != expected


def test_holdout_is_stable_across_processes_and_hash_seeds() -> None:
    code = "from stream.playbooks.policies import holdout_hash; print(holdout_hash('default', 'cust-42'))"
    for seed in ("0", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            cwd=Path(__file__).parents[3], env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout.strip()
        assert int(out) == holdout_hash("default", "cust-42")


@pytest.mark.parametrize("share", [0.10, 0.5])
def test_holdout_share_over_many_customers(share: float) -> None:
    n = 20_000
    threshold = math.ceil(share * 2**64)
    held = sum(in_holdout("default", f"cust-{i}", threshold) for i in range(n))
    sigma = math.sqrt(n * share * (1 - share))
    assert abs(held - n * share) < 4 * sigma
    # and a different playbook holds out a different (overlapping by chance only) group
    other = {i for i in range(n) if in_holdout("other", f"cust-{i}", threshold)}
    mine = {i for i in range(n) if in_holdout("default", f"cust-{i}", threshold)}
    assert abs(len(other & mine) - n * share * share) < 4 * math.sqrt(n * share * share)


def test_holdout_threshold_extremes() -> None:
    assert not any(in_holdout("default", f"c{i}", 0) for i in range(1000))
    assert all(in_holdout("default", f"c{i}", 2**64) for i in range(1000))
