import orjson
import pytest

from stream.sender.action import IGNORE_CHANNEL, IGNORE_HOLDOUT, IGNORE_MALFORMED, IGNORE_STATUS, Action, Ignored, decode_action
from tests.unit.sender.helpers import action_record, encoded


def test_a_scheduled_email_action_is_handled() -> None:
    record = action_record()
    action = decode_action(encoded(record))
    assert isinstance(action, Action)
    assert action.action_id == record["action_id"] and action.template == "at_risk_we_miss_you"
    assert action.trigger.kind == "segment" and action.trigger.to == "At Risk"
    assert action.not_before.tzinfo is not None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"channel": "sms", "template": "at_risk_incentive_sms"}, IGNORE_CHANNEL),
        ({"channel": "ads_audience", "template": None}, IGNORE_CHANNEL),
        ({"status": "skipped", "skip_reason": "frequency_cap"}, IGNORE_STATUS),
        ({"holdout": True}, IGNORE_HOLDOUT),
    ],
)
def test_records_not_for_the_sender_are_ignored_with_their_reason(changes: dict, reason: str) -> None:
    record = {**action_record(), **changes}
    decoded = decode_action(encoded(record))
    assert isinstance(decoded, Ignored) and decoded.reason == reason and decoded.action_id == record["action_id"]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b"null", id="null"),
        pytest.param(None, id="no-value"),
        # The records hold the current time: ids of their own keep test ids stable (xdist
        # workers must collect the same tests).
        pytest.param(orjson.dumps({**action_record(), "action_id": "act-123"}), id="short-action-id"),
        pytest.param(orjson.dumps({**action_record(), "not_before": "tomorrow"}), id="not-before-not-a-time"),
        pytest.param(orjson.dumps({**action_record(), "expires_at": "2024-03-01T10:00:00"}), id="expires-without-offset"),
        pytest.param(orjson.dumps({**action_record(), "recheck": ["moon_phase"]}), id="unknown-recheck"),
        pytest.param(orjson.dumps({**action_record(), "holdout": "no"}), id="holdout-not-a-bool"),
        pytest.param(orjson.dumps({**action_record(), "trigger": "At Risk"}), id="trigger-not-an-object"),
        pytest.param(orjson.dumps({key: value for key, value in action_record().items() if key != "customer_id"}),
                     id="no-customer-id"),
    ],
)
def test_malformed_records_are_ignored_never_raised(raw: bytes | None) -> None:
    decoded = decode_action(raw)
    assert isinstance(decoded, Ignored) and decoded.reason == IGNORE_MALFORMED and decoded.detail
