"""Properties over generated change histories: decide is deterministic (a replay gives the
same records and state as the live run) and never schedules marketing beyond a cap."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core.timeutil import HOUR_MS
from stream.playbooks import PolicyState, decide, load_playbook
from stream.playbooks.policies import exceeds_cap, quiet_release
from stream.rules import SEGMENT_NAMES

from .helpers import customer_in_holdout, customers_outside_holdout, ms, segment_change, tag_change

PLAYBOOK = load_playbook(None)
START = ms("2024-03-25T00:00:00Z")  # a week with a DST change in Europe
CUSTOMERS = [*customers_outside_holdout(PLAYBOOK, 2), customer_in_holdout(PLAYBOOK)]  # two treated, one held out
TAGS = sorted({a.trigger.enter_tag or a.trigger.leave_tag for a in PLAYBOOK.actions} - {None})

step = st.tuples(
    st.integers(min_value=0, max_value=30 * HOUR_MS),  # time since the previous change
    st.one_of(
        st.tuples(st.just("segment"), st.sampled_from(SEGMENT_NAMES)),
        st.tuples(st.just("tag"), st.sampled_from(TAGS), st.booleans()),
    ),
    st.sampled_from([None, "Europe/Berlin", "America/New_York", "Asia/Kolkata"]),
    st.booleans(),  # suppressed
)


def history(steps, customer):
    at, segment, out = START, None, []
    for gap, what, zone, suppressed in steps:
        at += gap
        extra = {"timezone": zone} if zone else {}
        if what[0] == "segment":
            if what[1] == segment:
                continue
            out.append((segment_change(what[1], segment, at=at, customer=customer, **extra), suppressed))
            segment = what[1]
        else:
            out.append((tag_change(what[1], what[2], at=at, customer=customer, **extra), suppressed))
    return out


def replay(changes, through_bytes):
    state, records = None, []
    for change, suppressed in changes:
        out, state = decide(change, PLAYBOOK, state, now_ms=ms(change["at"]), suppressed=suppressed)
        if through_bytes:
            state = PolicyState.from_bytes(state.to_bytes())
        records += out
    return records, state


@settings(max_examples=60, deadline=None)
@given(st.lists(step, min_size=1, max_size=40), st.sampled_from(CUSTOMERS))
def test_deterministic_and_capped(steps, customer) -> None:
    changes = history(steps, customer)
    live, live_state = replay(changes, through_bytes=True)
    again, again_state = replay(changes, through_bytes=False)
    assert live == again and live_state.to_bytes() == again_state.to_bytes()

    # every scheduled, sent (non-holdout) marketing action respects its channel's cap
    for channel, cap in PLAYBOOK.policies.frequency_caps.items():
        marketing = {a.name for a in PLAYBOOK.actions if a.marketing and a.channel == channel}
        times = []
        for record in live:
            if record["status"] == "scheduled" and not record["holdout"] and record["action"] in marketing:
                t = ms(record["not_before"])
                assert not exceeds_cap(sorted(times), t, cap.max, cap.window_ms)
                times.append(t)
        times.sort()
        for a, b in zip(times, times[cap.max :]):
            assert b - a >= cap.window_ms

    # quiet hours: nothing scheduled to go out inside the window, in the record's zone
    quiet = PLAYBOOK.policies.quiet_hours
    for record in live:
        if record["channel"] in quiet.channels:
            t = ms(record["not_before"])
            assert quiet_release(t, ZoneInfo(record["timezone"]), quiet.start_minute, quiet.end_minute) == t
