"""The playbook file: validation errors name file, field and reason; the shipped default
covers what issue 4 lists; the version is a content hash."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml

import stream.playbooks as playbooks_module
from stream.playbooks import (
    CHANNELS,
    DEFAULT_PLAYBOOK_PATH,
    PlaybookError,
    email_templates,
    load_playbook,
    parse_playbook,
)
from stream.playbooks.model import Playbook, Policies, canonical_json
from stream.rules import SEGMENT_NAMES, TAG_NAMES, load_rules, parse_rules

MINIMAL = """\
name: t
actions:
  - name: a1
    trigger: {enter_segment: Champions}
    channel: email
    template: a1
    expires_after_hours: 72
"""


def _err(text: str, name: str = "pb.yaml") -> str:
    with pytest.raises(PlaybookError) as exc:
        parse_playbook(text, name)
    return str(exc.value)


# --- validation errors: file, field, reason ---------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("Champions}", "Champs}", "pb.yaml: actions[0] (a1).trigger.enter_segment: unknown segment 'Champs'"),
        ("{enter_segment: Champions}", "{enter_tag: cart}", "pb.yaml: actions[0] (a1).trigger.enter_tag: unknown tag 'cart'"),
        ("{enter_segment: Champions}", "{leave_tag: vip}", "pb.yaml: actions[0] (a1).trigger.leave_tag: unknown tag 'vip'"),
        ("{enter_segment: Champions}", "{from: Champion, to: '*'}", "pb.yaml: actions[0] (a1).trigger.from: unknown segment 'Champion'"),
        ("{enter_segment: Champions}", "{from: '*', to: Los}", "pb.yaml: actions[0] (a1).trigger.to: unknown segment 'Los'"),
        ("{enter_segment: Champions}", "{enter_segment: Champions, enter_tag: prospect}", "pb.yaml: actions[0] (a1).trigger: must be exactly one of"),
        ("{enter_segment: Champions}", "{to: Lost}", "pb.yaml: actions[0] (a1).trigger: must be exactly one of"),
        ("{enter_segment: Champions}", "{from: Lost, to: Lost}", "pb.yaml: actions[0] (a1).trigger: from and to are both 'Lost': such a change never happens"),
        ("{enter_segment: Champions}", "{kind: enter_segment, enter_segment: Lost}", "pb.yaml: actions[0] (a1).trigger: 'kind' is not written in the file"),
        ("    template: a1\n", "", "pb.yaml: actions[0] (a1).template: email actions must name their template"),
        ("channel: email", "channel: fax", "pb.yaml: actions[0] (a1).channel: Input should be 'email', 'sms', 'ads_audience' or 'crm_task'"),
        ("expires_after_hours: 72", "expires_after_hours: 0", "pb.yaml: actions[0] (a1).expires_after_hours: must be > 0 hours"),
        ("expires_after_hours: 72", "expires_after_hours: true", "pb.yaml: actions[0] (a1).expires_after_hours: must be a number, not a boolean"),
        ("    expires_after_hours: 72\n", "", "pb.yaml: actions[0] (a1).expires_after_hours: required, missing"),
        ("expires_after_hours: 72", "expires_after_hours: 72\n    delay_hours: -1", "pb.yaml: actions[0] (a1).delay_hours: must be >= 0 hours"),
        ("expires_after_hours: 72", "expires_after_hours: 72\n    delay_hours: 0.0000001", "pb.yaml: actions[0] (a1).delay_hours: delay_hours must be a whole number of milliseconds"),
        ("expires_after_hours: 72", "expires_after_hours: 72\n    cooldown_days: 0", "pb.yaml: actions[0] (a1).cooldown_days: must be > 0 days"),
        ("expires_after_hours: 72", "expires_after_hours: 72\n    recheck: [left_trigger_tag]", "pb.yaml: actions[0] (a1).recheck: left_trigger_tag needs an enter_tag trigger"),
        ("expires_after_hours: 72", "expires_after_hours: 72\n    recheck: [ordered_since_trigger, ordered_since_trigger]", "pb.yaml: actions[0] (a1).recheck: listed twice: ordered_since_trigger"),
        ("expires_after_hours: 72", "expires_after_hours: 72\n    recheck: [has_ordered]", "pb.yaml: actions[0] (a1).recheck[0]: Input should be 'ordered_since_trigger'"),
        ("expires_after_hours: 72", "expires_after_hours: 72\n    tempalte: x", "pb.yaml: actions[0] (a1).tempalte: unknown key (known keys here: name, trigger, channel, template,"),
        ("expires_after_hours: 72", "expires_after_hours: 72\n    marketing: maybe", "pb.yaml: actions[0] (a1).marketing: Input should be a valid boolean"),
        ("expires_after_hours: 72", "expires_after_hours: 72\n    offer: {type: percent_off, value: [10]}", "pb.yaml: actions[0] (a1).offer.value: must be a number, a string or null"),
        ("expires_after_hours: 72", "expires_after_hours: 72\n    offer: {value: 10}", "pb.yaml: actions[0] (a1).offer.type: required, missing"),
        ("name: a1", "name: Win-Back", "pb.yaml: actions[0] (Win-Back).name: 'Win-Back' must be lowercase letters"),
        ("template: a1", "template: ../etc/passwd", "pb.yaml: actions[0] (a1).template: '../etc/passwd' must be lowercase"),
    ],
)
def test_action_errors_name_file_field_and_reason(old: str, new: str, expected: str) -> None:
    assert old in MINIMAL
    assert _err(MINIMAL.replace(old, new)).startswith(expected)


def _with_policies(policies: str) -> str:
    return MINIMAL.replace("name: t\n", "name: t\npolicies:\n" + policies)


@pytest.mark.parametrize(
    ("policies", "expected"),
    [
        ("  timezone: Mars/Base\n", "pb.yaml: policies.timezone: unknown IANA time zone 'Mars/Base'"),
        ("  frequency_caps: {emial: {max: 1, per_hours: 16}}\n", "pb.yaml: policies.frequency_caps.emial: not allowed as a key"),
        ("  frequency_caps: {email: {max: 0, per_hours: 16}}\n", "pb.yaml: policies.frequency_caps.email.max: Input should be greater than or equal to 1"),
        ("  frequency_caps: {email: {max: 1, per_hours: 0}}\n", "pb.yaml: policies.frequency_caps.email.per_hours: must be > 0 hours"),
        ("  frequency_caps: {email: {max: 1}}\n", "pb.yaml: policies.frequency_caps.email.per_hours: required, missing"),
        ("  quiet_hours: {start: '25:00', end: '08:00'}\n", "pb.yaml: policies.quiet_hours.start: must be \"HH:MM\" on a 24-hour clock"),
        ("  quiet_hours: {start: '21:00', end: 800}\n", "pb.yaml: policies.quiet_hours.end: must be a quoted \"HH:MM\" time (got 800)"),
        ("  quiet_hours: {start: '08:00', end: '08:00'}\n", "pb.yaml: policies.quiet_hours: start and end are both 08:00"),
        ("  quiet_hours: {channels: [email, pigeon]}\n", "pb.yaml: policies.quiet_hours.channels[1]: Input should be 'email'"),
        ("  backfill: {horizon_hours: -2}\n", "pb.yaml: policies.backfill.horizon_hours: must be > 0 hours"),
        ("  backfill: {act: yes please}\n", "pb.yaml: policies.backfill.act: Input should be a valid boolean"),
        ("  backfil: {act: true}\n", "pb.yaml: policies.backfil: unknown key (known keys here: timezone, frequency_caps, quiet_hours, backfill)"),
        ("  - 1\n", "pb.yaml: policies: must be a mapping"),
    ],
)
def test_policy_errors_name_file_field_and_reason(policies: str, expected: str) -> None:
    assert _err(_with_policies(policies)).startswith(expected)


def test_file_level_errors() -> None:
    assert _err(MINIMAL + "holdout: {share: 1.5}\n") == (
        "pb.yaml: holdout.share: must be between 0 and 1 (0.10 = 10% of customers)"
    )
    assert _err("name: t\nactions: []\n") == "pb.yaml: actions: must list at least one action"
    assert _err("actions: []\n").startswith("pb.yaml: name: required, missing")
    assert _err("playbook_schema: 2\n" + MINIMAL).startswith(
        "pb.yaml: playbook_schema: unsupported playbook_schema 2 (this version reads 1)"
    )
    assert _err("- a\n- b\n") == "pb.yaml: must be a mapping with name, policies and actions (got list)"
    assert _err("") == "pb.yaml: must be a mapping with name, policies and actions (got NoneType)"
    second = MINIMAL.split("actions:\n")[1]
    assert _err(MINIMAL + second) == "pb.yaml: actions[1] (a1).name: duplicate action name 'a1' (also actions[0])"


def test_yaml_errors_give_the_line() -> None:
    assert _err("name: t\nactions: [\n").startswith("pb.yaml: line 3: invalid YAML: ")
    assert _err("name: t\nname: u\n") == "pb.yaml: line 2: invalid YAML: duplicate key 'name' (first at line 1)"
    assert _err(b"name: \xff\n").startswith("pb.yaml: not UTF-8 text")


def test_every_error_is_reported_once_each() -> None:
    text = MINIMAL.replace("channel: email", "channel: fax").replace("Champions}", "Champs}")
    lines = _err(text).splitlines()
    assert len(lines) == 2 and all(line.startswith("pb.yaml: actions[0] (a1).") for line in lines)


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PlaybookError, match=re.escape(f"{missing}: cannot read playbook file")):
        load_playbook(missing)
    good = tmp_path / "mine.yaml"
    good.write_text(MINIMAL.replace("Champions}", "Champs}"))
    with pytest.raises(PlaybookError, match=re.escape(f"{good}: actions[0] (a1).trigger.enter_segment")):
        load_playbook(good)


def test_yaml_clock_times_dates_and_numbers_stay_what_they_look_like() -> None:
    # YAML 1.1 would read 21:00 as 1260 and 2024-01-01 as a date.
    text = _with_policies("  quiet_hours: {start: 21:30, end: 07:15}\n").replace(
        "    template: a1\n", "    template: a1\n    params: {since: 2024-01-01, n: 3, x: 0.5, hex: 0x10}\n"
    )
    pb = parse_playbook(text)
    assert (pb.policies.quiet_hours.start, pb.policies.quiet_hours.end) == ("21:30", "07:15")
    assert pb.actions[0].params == {"since": "2024-01-01", "n": 3, "x": 0.5, "hex": 16}


# --- defaults and marketing flags ---------------------------------------------------------------


def test_marketing_defaults_by_channel_and_can_be_set() -> None:
    text = MINIMAL + (
        "  - {name: a2, trigger: {enter_segment: Lost}, channel: crm_task, expires_after_hours: 1}\n"
        "  - {name: a3, trigger: {enter_segment: Lost}, channel: ads_audience, expires_after_hours: 1}\n"
        "  - {name: a4, trigger: {enter_segment: Lost}, channel: ads_audience, expires_after_hours: 1, marketing: true}\n"
        "  - {name: a5, trigger: {enter_segment: Lost}, channel: sms, template: a5, expires_after_hours: 1}\n"
        "  - {name: a6, trigger: {enter_segment: Lost}, channel: email, template: a6, expires_after_hours: 1, marketing: false}\n"
    )
    flags = {a.name: a.marketing for a in parse_playbook(text).actions}
    assert flags == {"a1": True, "a2": False, "a3": False, "a4": True, "a5": True, "a6": False}


def test_policies_left_out_take_the_model_defaults_and_the_rules_zone() -> None:
    pb = parse_playbook(MINIMAL)
    assert pb.policies == Policies(timezone=load_rules(None).timezone)
    berlin = parse_rules('timezone = "Europe/Berlin"\n')
    assert parse_playbook(MINIMAL, rules=berlin).policies.timezone == "Europe/Berlin"
    # a zone in the file wins over the rules'
    explicit = _with_policies("  timezone: America/New_York\n")
    assert parse_playbook(explicit, rules=berlin).policies.timezone == "America/New_York"


def test_segment_names_come_from_the_rules_in_effect() -> None:
    vip = MINIMAL.replace("Champions}", "VIP}")
    assert "unknown segment 'VIP'" in _err(vip)
    names = ", ".join(f'"{n}"' for n in SEGMENT_NAMES + ("VIP",))
    rules = parse_rules(
        f'[segments]\nnames = [{names}]\nr5 = ["New Customers", "Potential Loyalist", "Potential Loyalist", "VIP", "VIP"]\n'
    )
    assert parse_playbook(vip, rules=rules).actions[0].trigger.enter_segment == "VIP"


# --- version -----------------------------------------------------------------------------------


def test_version_is_a_hash_of_the_content_not_the_formatting() -> None:
    pb = parse_playbook(MINIMAL)
    assert pb.version == "p1-" + hashlib.sha256(canonical_json(pb)).hexdigest()[:12]
    reformatted = "# a comment\n" + MINIMAL.replace(
        "trigger: {enter_segment: Champions}", "trigger:\n      enter_segment: 'Champions'   # VIPs"
    ).replace("expires_after_hours: 72", "expires_after_hours: 72.0")
    assert parse_playbook(reformatted).version == pb.version
    explicit_defaults = MINIMAL.replace("expires_after_hours: 72", "expires_after_hours: 72\n    delay_hours: 0\n    marketing: true")
    assert parse_playbook(explicit_defaults).version == pb.version
    assert parse_playbook(MINIMAL.replace("72", "73")).version != pb.version
    assert parse_playbook(MINIMAL + "holdout: {share: 0.2}\n").version != pb.version
    # the zone the rules supply is part of what the playbook does
    assert parse_playbook(MINIMAL, rules=parse_rules('timezone = "Europe/Berlin"\n')).version != pb.version


# --- the shipped default playbook ---------------------------------------------------------------

# Issue 4's list of behavioural tags with actions.
ISSUE_TAGS = {
    "cart_abandoner", "one_time_buyer", "coupon_lover", "low_spender",
    "engaged_non_buyer", "prospect", "overdue", "high_spender",
}


@pytest.fixture(scope="module")
def default() -> Playbook:
    return load_playbook(None)


def test_default_loads_from_the_package_and_is_versioned(default: Playbook) -> None:
    assert DEFAULT_PLAYBOOK_PATH.name == "default_playbook.yaml"
    assert load_playbook(DEFAULT_PLAYBOOK_PATH) == default
    assert re.fullmatch(r"p1-[0-9a-f]{12}", default.version)
    assert default.policies.timezone == load_rules(None).timezone


def test_default_policies_are_the_issues(default: Playbook) -> None:
    p = default.policies
    assert float(default.holdout.share) == 0.10
    email = p.frequency_caps["email"]
    assert (email.max, email.window_ms) == (1, 16 * 3_600_000)
    assert p.quiet_hours is not None and (p.quiet_hours.start, p.quiet_hours.end) == ("21:00", "08:00")
    assert set(p.quiet_hours.channels) == {"email", "sms"}
    assert (p.backfill.horizon_ms, p.backfill.act) == (48 * 3_600_000, False)


def test_default_covers_every_segment_and_the_listed_tags(default: Playbook) -> None:
    entered = {a.trigger.enter_segment for a in default.actions if a.trigger.kind == "enter_segment"}
    assert entered == set(SEGMENT_NAMES)
    tags = {a.trigger.enter_tag or a.trigger.leave_tag for a in default.actions if a.trigger.kind in ("enter_tag", "leave_tag")}
    assert tags == ISSUE_TAGS and tags <= set(TAG_NAMES)
    assert {a.channel for a in default.actions} == set(CHANNELS)


def test_default_actions_match_the_product_owners_list(default: Playbook) -> None:
    by_name = {a.name: a for a in default.actions}
    per_segment = {s: [a for a in default.actions if a.trigger.enter_segment == s] for s in SEGMENT_NAMES}
    # several actions per segment, emails spread out so the email cap does not skip them
    for segment, actions in per_segment.items():
        assert len(actions) >= 2, segment
        emails = sorted(a.delay_ms for a in actions if a.channel == "email")
        window = default.policies.frequency_caps["email"].window_ms
        assert all(b - a >= window for a, b in zip(emails, emails[1:])), segment
    # Champions: no discount anywhere
    assert all(a.offer is None or "off" not in a.offer.type for a in per_segment["Champions"])
    assert by_name["champions_premium_upsell"].offer is None
    assert by_name["champions_vip_experience"].channel == "crm_task"
    # Can't Lose Them: a personal task and store credit
    assert by_name["cant_lose_concierge"].channel == "crm_task"
    assert by_name["cant_lose_store_credit"].offer.type == "store_credit"
    # Hibernating: moved to a low-frequency list
    assert by_name["hibernating_low_frequency_list"].params["list"] == "low_frequency"
    # Lost: a final offer, then removed from paid retargeting, later
    final, remove = by_name["lost_final_comeback"], by_name["lost_suppress_retargeting"]
    assert remove.channel == "ads_audience" and remove.params == {"audience": "retargeting", "op": "remove"}
    assert remove.delay_ms > final.delay_ms and not remove.marketing
    # At Risk: a retargeting audience that respects the suppression list
    add = by_name["at_risk_retargeting_audience"]
    assert add.params == {"audience": "retargeting", "op": "add"} and add.marketing
    # cart: a reminder, then free shipping on the second one, a day later
    first, second = by_name["cart_reminder"], by_name["cart_reminder_free_shipping"]
    assert first.offer is None and second.offer.type == "free_shipping"
    assert second.delay_ms - first.delay_ms == 24 * 3_600_000
    assert by_name["coupon_lover_targeted_coupon"].cooldown_ms is not None
    flag = by_name["high_spender_crm_flag"]
    assert flag.channel == "crm_task" and set(flag.params["flags"]) == {"priority_support", "upgraded_shipping"}


def test_every_message_names_a_template_and_the_docstring_lists_the_email_ones(default: Playbook) -> None:
    for action in default.actions:
        if action.channel in ("email", "sms"):
            assert action.template, action.name
    listed = playbooks_module.__doc__.split("keeps this one equal to it)::")[1]
    assert set(re.findall(r"[a-z][a-z0-9_]+", listed)) == set(email_templates(default))


def test_default_file_is_commented_yaml(default: Playbook) -> None:
    text = DEFAULT_PLAYBOOK_PATH.read_text()
    assert text.count("#") > 30
    assert yaml.safe_load(text)["name"] == default.name
