from datetime import UTC, datetime, timedelta

import pytest

from stream.sender.action import Action, decode_action
from stream.sender.eligibility import (SKIP_LEFT_SEGMENT, SKIP_LEFT_TAG, SKIP_ORDERED, Due, Expired, Hold, Profile, decode_profile,
                                       recheck, timing)
from tests.unit.sender.helpers import action_record, encoded, profile_record

T0 = datetime(2024, 3, 1, 22, 30, tzinfo=UTC)


def _action(**kwargs) -> Action:
    action = decode_action(encoded(action_record(**kwargs)))
    assert isinstance(action, Action), action
    return action


def _profile(**kwargs) -> Profile:
    profile = decode_profile(encoded(profile_record(**kwargs)))
    assert profile is not None
    return profile


def test_timing_holds_until_not_before_and_expires_at_expires_at() -> None:
    action = _action(not_before=T0, expires_at=T0 + timedelta(hours=1))
    assert timing(action, T0 - timedelta(milliseconds=1)) == Hold(T0)
    assert timing(action, T0) == Due()
    assert timing(action, T0 + timedelta(hours=1) - timedelta(milliseconds=1)) == Due()
    assert timing(action, T0 + timedelta(hours=1)) == Expired()


def test_quiet_hours_ending_after_expiry_wake_up_at_expiry() -> None:
    action = _action(not_before=T0 + timedelta(hours=5), expires_at=T0 + timedelta(hours=1))
    assert timing(action, T0) == Hold(T0 + timedelta(hours=1))
    assert timing(action, T0 + timedelta(hours=1)) == Expired()


def test_no_profile_means_nothing_is_known_to_have_changed() -> None:
    assert recheck(_action(trigger_at=T0), None) is None


@pytest.mark.parametrize(
    ("last_order", "expected"),
    [(T0 + timedelta(seconds=1), SKIP_ORDERED), (T0, None), (T0 - timedelta(days=90), None)],
)
def test_ordered_since_trigger(last_order: datetime, expected: str | None) -> None:
    action = _action(trigger_at=T0, recheck=["ordered_since_trigger"])
    assert recheck(action, _profile(as_of=T0 + timedelta(days=1), last_order_at=last_order)) == expected


def test_ordered_since_trigger_is_only_checked_when_asked() -> None:
    action = _action(trigger_at=T0, recheck=[], to="At Risk")
    assert recheck(action, _profile(as_of=T0 + timedelta(days=1), last_order_at=T0 + timedelta(hours=1))) is None


@pytest.mark.parametrize(
    ("as_of", "segment", "expected"),
    [
        (T0 + timedelta(hours=1), "Need Attention", SKIP_LEFT_SEGMENT),
        (T0, "Need Attention", SKIP_LEFT_SEGMENT),  # as new as the trigger counts
        (T0 + timedelta(hours=1), "At Risk", None),
        (T0 - timedelta(seconds=1), "Need Attention", None),  # older than the trigger: stale, not trusted
    ],
)
def test_left_trigger_segment(as_of: datetime, segment: str, expected: str | None) -> None:
    action = _action(trigger_at=T0, to="At Risk", recheck=["left_trigger_segment"])
    profile = _profile(as_of=as_of, segment=segment, last_order_at=T0 - timedelta(days=100))
    assert recheck(action, profile) == expected


@pytest.mark.parametrize(
    ("entered", "tags", "expected"),
    [
        (True, ["cart_abandoner"], None),
        (True, [], SKIP_LEFT_TAG),
        (False, [], None),
        (False, ["cart_abandoner"], SKIP_LEFT_TAG),
    ],
)
def test_left_trigger_tag(entered: bool, tags: list[str], expected: str | None) -> None:
    action = _action(trigger_at=T0, kind="tag", tag="cart_abandoner", entered=entered, recheck=["left_trigger_tag"])
    assert recheck(action, _profile(as_of=T0 + timedelta(minutes=1), tags=tags)) == expected
    # A profile from before the trigger says nothing about the tag since.
    assert recheck(action, _profile(as_of=T0 - timedelta(minutes=1), tags=tags)) is None


def test_a_segment_check_does_not_apply_to_a_tag_trigger() -> None:
    action = _action(trigger_at=T0, kind="tag", tag="prospect", recheck=["left_trigger_segment"])
    assert recheck(action, _profile(as_of=T0 + timedelta(hours=1), tags=["prospect"])) is None


@pytest.mark.parametrize("raw", [b"{}", b"nope", b'{"customer_id": "c", "as_of": "yesterday"}', b'{"customer_id": "c", "as_of": "2024-01-01T00:00:00Z", "tags": "x"}'])
def test_unusable_profiles_decode_to_none(raw: bytes) -> None:
    assert decode_profile(raw) is None
