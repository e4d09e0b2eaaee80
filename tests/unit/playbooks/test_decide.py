"""decide(): triggers, every policy through the whole decision, records and state."""

from __future__ import annotations

from dataclasses import replace

import copy
import hashlib

import pytest

from stream.core.timeutil import DAY_MS, HOUR_MS, rfc3339_ms
from stream.playbooks.policy_state import DECIDED_KEEP
from stream.playbooks import PolicyState, action_id, decide, load_playbook
from stream.playbooks.policies import holdout_hash

from .helpers import (
    RULES_VERSION,
    customer_in_holdout,
    customers_outside_holdout,
    email_action,
    make_playbook,
    ms,
    segment_change,
    tag_change,
)

T = ms("2024-03-01T12:00:00Z")
NOW = T  # live: the change is fresh


def run(changes, playbook, *, state=None, now_ms=None, suppressed=False):
    """Decide a sequence of changes for one customer, the state carried through bytes as
    the shell stores it. Returns every record and the final state."""
    records = []
    for change in changes:
        now = now_ms if now_ms is not None else ms(change["at"])
        out, state = decide(change, playbook, state, now_ms=now, suppressed=suppressed)
        state = PolicyState.from_bytes(state.to_bytes())
        records.extend(out)
    return records, state


def outcome(record):
    return record["status"], record["skip_reason"]


# --- triggers --------------------------------------------------------------------------------


def test_each_trigger_form_and_wildcards() -> None:
    pb = make_playbook(
        [
            email_action("enter", {"enter_segment": "At Risk"}),
            email_action("exact", {"from": "Champions", "to": "At Risk"}),
            email_action("from_any", {"from": "*", "to": "Lost"}),
            email_action("to_any", {"from": "Champions", "to": "*"}),
            email_action("first", {"from": None, "to": "New Customers"}),
            email_action("gone", {"from": "*", "to": None}),
            email_action("cart", {"enter_tag": "cart_abandoner"}),
            email_action("not_prospect", {"leave_tag": "prospect"}),
        ],
        frequency_caps={},
    )

    def fired(change):
        return [r["action"] for r in decide(change, pb, None, now_ms=NOW, suppressed=False)[0]]

    assert fired(segment_change("At Risk", "Loyal Customers")) == ["enter"]
    assert fired(segment_change("At Risk", "Champions")) == ["enter", "exact", "to_any"]
    assert fired(segment_change("Lost", "Hibernating")) == ["from_any"]
    assert fired(segment_change("Lost", None)) == ["from_any"]
    assert fired(segment_change("Loyal Customers", "Champions")) == ["to_any"]
    assert fired(segment_change("New Customers", None)) == ["first"]
    assert fired(segment_change("New Customers", "Promising")) == []
    assert fired(segment_change(None, "Champions")) == ["to_any", "gone"]
    assert fired(tag_change("cart_abandoner", True)) == ["cart"]
    assert fired(tag_change("cart_abandoner", False)) == []
    assert fired(tag_change("prospect", False)) == ["not_prospect"]
    assert fired(tag_change("prospect", True)) == []
    assert fired(tag_change("overdue", True)) == []


def test_a_change_without_actions_still_records_the_rules_version() -> None:
    records, state = decide(tag_change("lapsed"), make_playbook(), None, now_ms=NOW, suppressed=False)
    assert records == [] and replace(state, decided=()) == PolicyState()


# --- the record ------------------------------------------------------------------------------


def test_record_fields() -> None:
    pb = make_playbook(
        [email_action("winback", offer={"type": "percent_off", "value": 20}, params={"a": [1, {"b": 2}]},
                      delay_hours=2, expires_after_hours=48, recheck=["ordered_since_trigger"])]
    )
    change = segment_change(at="2024-03-01T12:00:00+02:00", cause={"kind": "event", "event_id": "e1", "event_type": "order"})
    [record], _ = decide(change, pb, None, now_ms=NOW, suppressed=False)
    at = ms("2024-03-01T10:00:00Z")
    assert record == {
        "action_id": action_id(change["change_id"], "test", "winback"),
        "customer_id": "cust-1",
        "playbook": "test",
        "playbook_version": pb.version,
        "action": "winback",
        "channel": "email",
        "template": "winback",
        "offer": {"type": "percent_off", "value": 20},
        "params": {"a": [1, {"b": 2}]},
        "recheck": ["ordered_since_trigger"],
        "trigger": {
            "change_id": change["change_id"], "kind": "segment", "from": "Loyal Customers", "to": "At Risk",
            "at": rfc3339_ms(at), "cause": {"kind": "event", "event_id": "e1", "event_type": "order"},
            "rules_version": RULES_VERSION,
        },
        "status": "scheduled",
        "skip_reason": None,
        "holdout": False,
        "timezone": "UTC",
        "not_before": rfc3339_ms(at + 2 * HOUR_MS),
        "expires_at": rfc3339_ms(at + 2 * HOUR_MS + 48 * HOUR_MS),
    }
    [tag_record], _ = decide(tag_change("cart_abandoner", True), make_playbook(
        [email_action("cart", {"enter_tag": "cart_abandoner"})]), None, now_ms=NOW, suppressed=False)
    assert {k: tag_record["trigger"][k] for k in ("kind", "tag", "entered")} == {"kind": "tag", "tag": "cart_abandoner", "entered": True}
    assert "from" not in tag_record["trigger"]


def test_action_id_is_deterministic_and_distinct() -> None:
    cid = "0123456789abcdef0123456789abcdef"
    expected = "act-" + hashlib.sha256(f"{cid}|default|cart_reminder".encode()).hexdigest()[:32]
    assert action_id(cid, "default", "cart_reminder") == expected
    ids = {action_id(c, p, a) for c in (cid, cid[::-1]) for p in ("default", "other") for a in ("x", "y")}
    assert len(ids) == 8
    pb = load_playbook(None)
    change = segment_change("At Risk")
    first = decide(change, pb, None, now_ms=NOW, suppressed=False)[0]
    again = decide(copy.deepcopy(change), pb, PolicyState(), now_ms=NOW + DAY_MS, suppressed=True)[0]
    assert [r["action_id"] for r in first] == [r["action_id"] for r in again]
    assert len({r["action_id"] for r in first}) == len(first)


def test_records_do_not_share_the_playbooks_data() -> None:
    pb = make_playbook([email_action(params={"list": [1]})])
    [record], _ = decide(segment_change(), pb, None, now_ms=NOW, suppressed=False)
    record["params"]["list"].append(2)
    assert pb.actions[0].params == {"list": [1]}


def test_not_a_change_record_is_a_value_error() -> None:
    pb = make_playbook()
    for bad in ({}, {**segment_change(), "at": "yesterday"}, {k: v for k, v in segment_change().items() if k != "to"}):
        with pytest.raises(ValueError, match="not a segment-change record"):
            decide(bad, pb, None, now_ms=NOW, suppressed=False)


# --- frequency cap ---------------------------------------------------------------------------


def _two_emails(gap_ms: int, pb=None):
    pb = pb or make_playbook([email_action("a", {"enter_segment": "At Risk"}), email_action("b", {"enter_tag": "overdue"})])
    return run([segment_change(at=T), tag_change("overdue", at=T + gap_ms)], pb)[0]


def test_cap_at_exactly_the_window_and_a_millisecond_less() -> None:
    window = make_playbook().policies.frequency_caps["email"].window_ms
    assert [outcome(r) for r in _two_emails(window)] == [("scheduled", None)] * 2
    assert [outcome(r) for r in _two_emails(window - 1)] == [("scheduled", None), ("skipped", "frequency_cap")]


def test_cap_is_per_channel_and_only_for_marketing() -> None:
    pb = make_playbook(
        [
            email_action("mail"),
            email_action("mail2", delay_hours=1),
            {"name": "text", "trigger": {"enter_segment": "At Risk"}, "channel": "sms", "template": "t", "expires_after_hours": 1},
            email_action("service", marketing=False),
            {"name": "task", "trigger": {"enter_segment": "At Risk"}, "channel": "crm_task", "expires_after_hours": 1},
        ],
        frequency_caps={"email": {"max": 1, "per_hours": 16}, "sms": {"max": 1, "per_hours": 16}},
    )
    records, state = run([segment_change()], pb)
    assert {r["action"]: outcome(r) for r in records} == {
        "mail": ("scheduled", None), "mail2": ("skipped", "frequency_cap"), "text": ("scheduled", None),
        "service": ("scheduled", None), "task": ("scheduled", None),
    }
    assert state.sends == {"email": (T,), "sms": (T,)}


def test_cap_counts_by_not_before_so_a_delayed_send_blocks_an_earlier_one() -> None:
    pb = make_playbook([email_action("later", delay_hours=24), email_action("now", {"enter_tag": "overdue"})])
    window = pb.policies.frequency_caps["email"].window_ms
    delay = pb.actions[0].delay_ms
    ok = run([segment_change(at=T), tag_change("overdue", at=T + delay - window)], pb)[0]
    capped = run([segment_change(at=T), tag_change("overdue", at=T + delay - window + 1)], pb)[0]
    assert [outcome(r) for r in ok] == [("scheduled", None)] * 2
    assert outcome(capped[1]) == ("skipped", "frequency_cap")


def test_a_larger_cap_allows_that_many() -> None:
    pb = make_playbook([email_action(f"m{i}", delay_hours=i) for i in range(4)],
                       frequency_caps={"email": {"max": 3, "per_hours": 16}})
    records, _ = run([segment_change()], pb)
    assert [r["status"] for r in records] == ["scheduled"] * 3 + ["skipped"]


def test_skipped_actions_do_not_use_up_the_cap() -> None:
    pb = make_playbook([email_action("a"), email_action("b", cooldown_days=1), email_action("c", delay_hours=1)])
    # b is in cooldown (run before), so it must not block c
    state = PolicyState({}, {"b": (T - HOUR_MS,)})
    records, _ = run([segment_change(at=T + 20 * HOUR_MS)], pb, state=state)
    assert [outcome(r) for r in records] == [("scheduled", None), ("skipped", "cooldown"), ("skipped", "frequency_cap")]
    pb2 = make_playbook([email_action("b", cooldown_days=1), email_action("c", delay_hours=1)])
    records, _ = run([segment_change(at=T + 20 * HOUR_MS)], pb2, state=state)
    assert [outcome(r) for r in records] == [("skipped", "cooldown"), ("scheduled", None)]


# --- cooldown --------------------------------------------------------------------------------


def test_cooldown_edge() -> None:
    pb = make_playbook([email_action(cooldown_days=30)])
    cool = pb.actions[0].cooldown_ms
    ok, _ = run([segment_change(at=T), segment_change(at=T + cool)], pb)
    blocked, _ = run([segment_change(at=T), segment_change(at=T + cool - 1)], pb)
    assert [outcome(r) for r in ok] == [("scheduled", None)] * 2
    assert [outcome(r) for r in blocked] == [("scheduled", None), ("skipped", "cooldown")]


def test_cooldown_is_per_action() -> None:
    pb = make_playbook([email_action("a", cooldown_days=30), email_action("b", {"enter_tag": "overdue"}, cooldown_days=30)],
                       frequency_caps={})
    records, state = run([segment_change(at=T), tag_change("overdue", at=T + 1)], pb)
    assert [outcome(r) for r in records] == [("scheduled", None)] * 2
    assert state.cooldowns == {"a": (T,), "b": (T + 1,)}


# --- quiet hours -----------------------------------------------------------------------------


def _quiet_pb(**policies):
    return make_playbook(
        [email_action("mail"), {"name": "task", "trigger": {"enter_segment": "At Risk"}, "channel": "crm_task", "expires_after_hours": 1}],
        quiet_hours={"start": "21:00", "end": "08:00", "channels": ["email"]},
        **policies,
    )


@pytest.mark.parametrize(
    ("at", "not_before"),
    [
        ("2024-03-05T20:59:59.999Z", "2024-03-05T20:59:59.999Z"),
        ("2024-03-05T21:00:00.000Z", "2024-03-06T08:00:00.000Z"),
        ("2024-03-06T02:00:00.000Z", "2024-03-06T08:00:00.000Z"),
        ("2024-03-06T07:59:59.999Z", "2024-03-06T08:00:00.000Z"),
        ("2024-03-06T08:00:00.000Z", "2024-03-06T08:00:00.000Z"),
    ],
)
def test_quiet_hours_hold_messages_only(at: str, not_before: str) -> None:
    mail, task = decide(segment_change(at=at), _quiet_pb(), None, now_ms=ms(at), suppressed=False)[0]
    assert mail["not_before"] == not_before and mail["status"] == "scheduled"
    assert task["not_before"] == rfc3339_ms(ms(at))
    assert ms(mail["expires_at"]) - ms(mail["not_before"]) == _quiet_pb().actions[0].expires_after_ms


def test_quiet_hours_use_the_changes_zone_else_the_playbooks() -> None:
    at = "2024-03-30T21:30:00Z"  # 22:30 in Berlin (CET), 17:30 in New York
    pb = _quiet_pb(timezone="America/New_York")
    [berlin, _], _ = decide(segment_change(at=at, timezone="Europe/Berlin"), pb, None, now_ms=ms(at), suppressed=False)
    # DST starts in Berlin that night: 08:00 CEST is 06:00 UTC
    assert (berlin["timezone"], berlin["not_before"]) == ("Europe/Berlin", "2024-03-31T06:00:00.000Z")
    [default, _], _ = decide(segment_change(at=at), pb, None, now_ms=ms(at), suppressed=False)
    assert (default["timezone"], default["not_before"]) == ("America/New_York", rfc3339_ms(ms(at)))
    [unknown, _], _ = decide(segment_change(at=at, timezone="Mars/Base"), pb, None, now_ms=ms(at), suppressed=False)
    assert unknown["timezone"] == "America/New_York"


def test_held_messages_are_capped_at_their_release_time() -> None:
    # two changes in one night: both would be released at 08:00, the second is capped
    pb = make_playbook([email_action("a"), email_action("b", {"enter_tag": "overdue"})],
                       quiet_hours={"start": "21:00", "end": "08:00"})
    records, _ = run([segment_change(at="2024-03-05T22:00:00Z"), tag_change("overdue", at="2024-03-06T05:00:00Z")], pb)
    assert [r["not_before"] for r in records] == ["2024-03-06T08:00:00.000Z"] * 2
    assert [outcome(r) for r in records] == [("scheduled", None), ("skipped", "frequency_cap")]


# --- holdout ---------------------------------------------------------------------------------


def test_holdout_records_are_emitted_and_use_up_nothing() -> None:
    pb = make_playbook([email_action("a", cooldown_days=30), email_action("b")], share=0.5)
    held = customer_in_holdout(pb)
    [treated] = customers_outside_holdout(pb, 1)
    records, state = run([segment_change(customer=held), segment_change(customer=held, at=T + 1)], pb)
    assert all(r["holdout"] for r in records)
    assert [outcome(r) for r in records] == [("scheduled", None)] * 4
    assert replace(state, decided=()) == PolicyState()
    records, state = run([segment_change(customer=treated), segment_change(customer=treated, at=T + 1)], pb)
    assert not any(r["holdout"] for r in records)
    assert [outcome(r) for r in records] == [("scheduled", None), ("skipped", "frequency_cap"),
                                             ("skipped", "cooldown"), ("skipped", "frequency_cap")]


def test_holdout_is_per_customer_and_per_playbook_name() -> None:
    pb = make_playbook(share=0.10)
    flags = {}
    for i in range(2000):
        cid = f"c{i}"
        [record], _ = decide(segment_change(customer=cid), pb, None, now_ms=NOW, suppressed=False)
        flags[cid] = record["holdout"]
        assert record["holdout"] == (holdout_hash("test", cid) < pb.holdout_threshold)
    assert 0 < sum(flags.values()) < len(flags)
    renamed = make_playbook(share=0.10, name="test2")
    assert any(
        decide(segment_change(customer=cid), renamed, None, now_ms=NOW, suppressed=False)[0][0]["holdout"] != held
        for cid, held in flags.items()
    )


# --- backfill and rules changes -----------------------------------------------------------------


def test_backfill_horizon_edge() -> None:
    pb = make_playbook()
    horizon = pb.policies.backfill.horizon_ms
    [edge], _ = decide(segment_change(at=T), pb, None, now_ms=T + horizon, suppressed=False)
    [older], state = decide(segment_change(at=T), pb, None, now_ms=T + horizon + 1, suppressed=False)
    assert outcome(edge) == ("scheduled", None)
    assert outcome(older) == ("skipped", "backfill")
    assert state.sends == {}  # a skipped action uses up nothing


def test_changes_flagged_backfill_are_skipped() -> None:
    [record], _ = decide(segment_change(at=T, backfill=True), make_playbook(), None, now_ms=T, suppressed=False)
    assert outcome(record) == ("skipped", "backfill")
    [record], _ = decide(segment_change(at=T, backfill=False), make_playbook(), None, now_ms=T, suppressed=False)
    assert outcome(record) == ("scheduled", None)


def test_only_changes_caused_by_the_rules_are_skipped_across_a_rules_change() -> None:
    """The worker emits what a new rules file changes as changes of their own (cause
    ``rules``); the customer's changes after them are the customer's, under any version."""
    pb = make_playbook([email_action(), email_action("b", {"enter_tag": "overdue"})], frequency_caps={})
    changes = [
        segment_change(at=T, rules_version="r1-aaaaaaaaaaaa"),
        tag_change("overdue", at=T + 1, rules_version="r1-bbbbbbbbbbbb", cause={"kind": "rules"}),
        segment_change(at=T + 2, rules_version="r1-bbbbbbbbbbbb"),
        segment_change("Lost", "At Risk", at=T + 3, rules_version="r1-cccccccccccc"),
    ]
    records, _ = run(changes, pb)
    assert [outcome(r) for r in records] == [
        ("scheduled", None), ("skipped", "rules_changed"), ("scheduled", None),
    ]


def test_a_change_caused_by_the_rules_is_skipped_even_for_a_customer_without_history() -> None:
    pb = make_playbook(frequency_caps={})
    [by_rules], _ = decide(segment_change(at=T, cause={"kind": "rules"}), pb, None, now_ms=T, suppressed=False)
    [by_time], _ = decide(segment_change(at=T, cause={"kind": "time"}), pb, None, now_ms=T, suppressed=False)
    assert outcome(by_rules) == ("skipped", "rules_changed")
    assert outcome(by_time) == ("scheduled", None)
    acting = make_playbook(frequency_caps={}, backfill={"horizon_hours": 48, "act": True})
    [acted], _ = decide(segment_change(at=T, cause={"kind": "rules"}), acting, None, now_ms=T, suppressed=False)
    assert outcome(acted) == ("scheduled", None)


def test_act_lifts_backfill_and_rules_changed() -> None:
    pb = make_playbook(frequency_caps={}, backfill={"horizon_hours": 48, "act": True})
    old = decide(segment_change(at=T, backfill=True), pb, None, now_ms=T + 365 * DAY_MS, suppressed=False)[0]
    changed = decide(segment_change(at=T, cause={"kind": "rules"}), pb, PolicyState(), now_ms=T, suppressed=False)[0]
    assert outcome(old[0]) == outcome(changed[0]) == ("scheduled", None)


# --- suppression and precedence ------------------------------------------------------------------


def test_suppression_skips_marketing_only() -> None:
    pb = make_playbook([
        email_action("mail"),
        {"name": "audience_add", "trigger": {"enter_segment": "At Risk"}, "channel": "ads_audience",
         "marketing": True, "expires_after_hours": 1},
        {"name": "audience_remove", "trigger": {"enter_segment": "At Risk"}, "channel": "ads_audience", "expires_after_hours": 1},
        {"name": "task", "trigger": {"enter_segment": "At Risk"}, "channel": "crm_task", "expires_after_hours": 1},
    ])
    records, state = run([segment_change()], pb, suppressed=True)
    assert {r["action"]: outcome(r) for r in records} == {
        "mail": ("skipped", "suppressed"), "audience_add": ("skipped", "suppressed"),
        "audience_remove": ("scheduled", None), "task": ("scheduled", None),
    }
    assert state.sends == {}


def test_skip_reasons_come_in_a_fixed_order() -> None:
    pb = make_playbook([email_action(cooldown_days=30)])
    busy = PolicyState({"email": (T,)}, {"winback": (T,)})
    horizon = pb.policies.backfill.horizon_ms

    def reason(state, *, now, suppressed, cause="time"):
        change = segment_change(at=T, cause={"kind": cause})
        return decide(change, pb, state, now_ms=now, suppressed=suppressed)[0][0]["skip_reason"]

    assert reason(busy, now=T + horizon + 1, suppressed=True, cause="rules") == "backfill"
    assert reason(busy, now=T, suppressed=True, cause="rules") == "rules_changed"
    assert reason(busy, now=T, suppressed=True) == "suppressed"
    assert reason(busy, now=T, suppressed=False) == "cooldown"
    assert reason(PolicyState({"email": (T,)}), now=T, suppressed=False) == "frequency_cap"
    assert reason(PolicyState(), now=T, suppressed=False) is None


# --- state ---------------------------------------------------------------------------------------


def test_state_bytes_round_trip_and_reject_garbage() -> None:
    state = PolicyState({"email": (1, 2)}, {"a": (3,)}, ("c1", "c2"))
    assert PolicyState.from_bytes(state.to_bytes()) == state
    assert PolicyState.from_bytes(PolicyState().to_bytes()) == PolicyState()
    # A state written when it also kept the rules version of the last change still reads.
    assert PolicyState.from_bytes(b'{"f": 1, "r": "r1-old", "s": {"email": [1, 2]}}') == PolicyState({"email": (1, 2)})
    for bad in (b"", b"[]", b'{"f": 2}', b'{"f": 1, "s": {"email": ["x"]}}', b'{"f": 1, "d": [5]}', b"\xff"):
        with pytest.raises(ValueError):
            PolicyState.from_bytes(bad)


def test_state_keeps_only_what_a_decision_can_still_need() -> None:
    pb = load_playbook(None)
    [customer] = customers_outside_holdout(pb, 1)
    segments = ["At Risk", "Champions", "Lost", "Loyal Customers", "Hibernating", "New Customers"]
    tags = ["cart_abandoner", "coupon_lover", "overdue", "prospect"]
    state, at = None, T
    longest_cooldown = max(pb.cooldown_windows.values())
    longest_delay = max(a.delay_ms for a in pb.actions)
    for i in range(400):  # about four years of changes, one every 3.5 days
        at += DAY_MS * 7 // 2
        change = (segment_change(segments[i % len(segments)], at=at, customer=customer) if i % 2
                  else tag_change(tags[i % len(tags)], at=at, customer=customer))
        _, state = decide(change, pb, state, now_ms=at, suppressed=False)
        for channel, times in state.sends.items():
            assert all(t > at - pb.cap_windows[channel] for t in times)
        for name, times in state.cooldowns.items():
            assert all(t > at - pb.cooldown_windows[name] for t in times)
    # bounded by the windows, not by the history: nothing older than the longest window,
    # nothing later than the longest delay plus a night's quiet hours
    every = [t for times in (*state.sends.values(), *state.cooldowns.values()) for t in times]
    assert all(at - longest_cooldown < t <= at + longest_delay + DAY_MS for t in every)
    assert len(state.to_bytes()) < 2048


def test_state_forgets_channels_and_actions_the_playbook_no_longer_limits() -> None:
    pb = make_playbook(frequency_caps={})
    state = PolicyState({"email": (T,), "sms": (T,)}, {"gone": (T,)})
    _, new = decide(segment_change(at=T + 1), pb, state, now_ms=T + 1, suppressed=False)
    assert replace(new, decided=()) == PolicyState()


def test_a_redelivered_change_emits_nothing_and_keeps_the_state() -> None:
    pb = make_playbook([email_action("a", cooldown_days=30)])
    [customer] = customers_outside_holdout(pb, 1)
    change = segment_change(customer=customer)
    first, state = decide(change, pb, None, now_ms=NOW, suppressed=False)
    assert [outcome(r) for r in first] == [("scheduled", None)]
    again, same = decide(copy.deepcopy(change), pb, state, now_ms=NOW, suppressed=False)
    assert again == [] and same == state


def test_decided_ids_are_bounded() -> None:
    state = PolicyState()
    for n in range(DECIDED_KEEP + 5):
        state = state.with_decided(f"c{n}")
    assert state.decided == tuple(f"c{n}" for n in range(5, DECIDED_KEEP + 5))


def test_backfill_override_acts_on_old_changes_and_changes_the_version() -> None:
    pb = make_playbook([email_action("a")])
    assert pb.version  # computed before the copy: the copy must not inherit it
    acting = pb.with_backfill_act(True)
    assert acting.version != pb.version and acting.policies.backfill.act
    [customer] = customers_outside_holdout(pb, 1)
    old = segment_change(customer=customer, at=T)
    far_later = T + 400 * DAY_MS
    assert [outcome(r) for r in decide(old, pb, None, now_ms=far_later, suppressed=False)[0]] == [("skipped", "backfill")]
    assert [outcome(r) for r in decide(old, acting, None, now_ms=far_later, suppressed=False)[0]] == [("scheduled", None)]
