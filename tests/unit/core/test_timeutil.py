from zoneinfo import ZoneInfo

from stream.core.timeutil import day_of, day_start_ms, parse_rfc3339_ms, rfc3339_ms

NY = ZoneInfo("America/New_York")
UTC = ZoneInfo("UTC")


def test_rfc3339_ms_format():
    assert rfc3339_ms(852076800000) == "1997-01-01T00:00:00.000Z"
    assert rfc3339_ms(852076800123) == "1997-01-01T00:00:00.123Z"
    assert parse_rfc3339_ms("1997-01-01T01:00:00.123+01:00") == 852076800123


def test_business_day_in_new_york():
    # 2024-03-10 04:59:59.999Z is 23:59:59.999 EST on March 9.
    assert day_of(parse_rfc3339_ms("2024-03-10T04:59:59.999Z"), NY) == day_of(parse_rfc3339_ms("2024-03-09T12:00:00Z"), UTC)
    assert day_of(parse_rfc3339_ms("2024-03-10T05:00:00Z"), NY) == day_of(parse_rfc3339_ms("2024-03-10T12:00:00Z"), UTC)


def test_day_start_across_dst():
    d = day_of(parse_rfc3339_ms("2024-03-10T12:00:00Z"), UTC)
    assert rfc3339_ms(day_start_ms(d, NY)) == "2024-03-10T05:00:00.000Z"  # EST midnight
    assert rfc3339_ms(day_start_ms(d + 1, NY)) == "2024-03-11T04:00:00.000Z"  # EDT midnight (23 h day)
    d = day_of(parse_rfc3339_ms("2024-11-03T12:00:00Z"), UTC)
    assert rfc3339_ms(day_start_ms(d, NY)) == "2024-11-03T04:00:00.000Z"
    assert rfc3339_ms(day_start_ms(d + 1, NY)) == "2024-11-04T05:00:00.000Z"  # 25 h day


def test_day_start_when_midnight_does_not_exist():
    # Sao Paulo started DST at 00:00 on 2018-11-04: clocks jumped to 01:00 (-02:00).
    sp = ZoneInfo("America/Sao_Paulo")
    d = day_of(parse_rfc3339_ms("2018-11-04T12:00:00Z"), UTC)
    start = day_start_ms(d, sp)
    assert rfc3339_ms(start) == "2018-11-04T03:00:00.000Z"  # 01:00 local, the first instant
    assert day_of(start, sp) == d and day_of(start - 1, sp) == d - 1


def test_day_start_is_first_instant_for_many_days_and_zones():
    for name in ("America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/Havana", "Asia/Tehran"):
        zone = ZoneInfo(name)
        base = day_of(parse_rfc3339_ms("2018-01-01T00:00:00Z"), UTC)
        for d in range(base, base + 800, 3):
            start = day_start_ms(d, zone)
            assert day_of(start, zone) == d
            assert day_of(start - 1, zone) == d - 1
