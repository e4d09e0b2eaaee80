from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import yaml

from stream.sender.action import Action, decode_action
from stream.sender.contacts import Contact
from stream.sender.eligibility import decode_profile
from stream.sender.render import TEMPLATE_ERROR, TEMPLATE_MISSING, RenderError, Renderer, build_message, offer_text, render_context
from stream.sender.smtp import dot_stuffed
from tests.unit.sender.helpers import action_record, encoded, profile_record

DEFAULT_PLAYBOOK = Path(__file__).parents[3] / "stream" / "playbooks" / "default_playbook.yaml"


def _default_playbook_emails() -> list[dict]:
    """The email actions the default playbook names, read straight from its YAML (not
    through the playbook engine, so this test only depends on the file)."""
    document = yaml.safe_load(DEFAULT_PLAYBOOK.read_text())
    return [action for action in document["actions"] if action.get("channel") == "email"]


def _action(**kwargs) -> Action:
    action = decode_action(encoded(action_record(**kwargs)))
    assert isinstance(action, Action), action
    return action


def test_the_default_playbook_names_email_templates() -> None:
    emails = _default_playbook_emails()
    assert len({action["template"] for action in emails}) >= 30


@pytest.mark.parametrize("with_profile", [False, True])
def test_every_email_template_of_the_default_playbook_renders(with_profile: bool) -> None:
    renderer = Renderer()
    now = datetime.now(UTC)
    for spec in _default_playbook_emails():
        trigger = spec["trigger"]
        tag = trigger.get("enter_tag") or trigger.get("leave_tag")
        kind = {"kind": "tag", "tag": tag, "entered": "enter_tag" in trigger} if tag else {
            "kind": "segment", "to": trigger.get("enter_segment") or trigger.get("to")}
        action = _action(template=spec["template"], offer=spec.get("offer"), params=spec.get("params") or {},
                         trigger_at=now - timedelta(hours=1), **kind)
        profile = decode_profile(encoded(profile_record(as_of=now, last_order_at=now - timedelta(days=120)))) if with_profile else None
        rendered = renderer.render(spec["template"], render_context(action, profile, Contact("ann@example.com", "Ann")))
        assert rendered.subject and "\n" not in rendered.subject, spec["template"]
        assert rendered.text.startswith("Hi Ann,") and action.action_id in rendered.text, spec["template"]
        assert rendered.html is not None and "<p>Hi Ann,</p>" in rendered.html, spec["template"]
        assert "None" not in rendered.subject + rendered.text, spec["template"]


def test_html_is_escaped_and_text_is_not() -> None:
    rendered = Renderer().render("cart_reminder", render_context(_action(template="cart_reminder"), None, Contact("a@b.c", "<Ann & Bo>")))
    assert "Hi <Ann & Bo>," in rendered.text
    assert "Hi &lt;Ann &amp; Bo&gt;," in rendered.html  # type: ignore[operator]


def test_a_folder_overrides_shipped_templates_name_by_name(tmp_path: Path) -> None:
    (tmp_path / "cart_reminder.j2").write_text(
        "{% block subject %}Custom for {{ customer_id }}{% endblock %}{% block text %}Plain {{ params.note }}{% endblock %}")
    renderer = Renderer(tmp_path)
    context = render_context(_action(template="cart_reminder", params={"note": "hi"}, customer_id="c-7"), None, None)
    custom = renderer.render("cart_reminder", context)
    assert (custom.subject, custom.text, custom.html) == ("Custom for c-7", "Plain hi\n", None)
    assert renderer.render("at_risk_we_miss_you", context).subject.startswith("We miss you")  # shipped, not overridden


@pytest.mark.parametrize("name", [None, "", "no_such_template", "../etc/passwd", "_layout/../x"])
def test_a_missing_template_is_a_render_error(name: str | None) -> None:
    with pytest.raises(RenderError) as raised:
        Renderer().render(name, render_context(_action(), None, None))
    assert raised.value.reason == TEMPLATE_MISSING


@pytest.mark.parametrize(
    "source",
    [
        "{% block subject %}Hi {{ nmae }}{% endblock %}{% block text %}x{% endblock %}",  # typo: undefined
        "{% block subject %}Hi {{ name }{% endblock %}",  # syntax
        "{% block text %}no subject{% endblock %}",
        "{% block subject %} {% endblock %}{% block text %}x{% endblock %}",  # empty subject
        "{% block subject %}{{ ''.__class__.__mro__ }}{% endblock %}{% block text %}x{% endblock %}",  # sandbox
    ],
)
def test_a_broken_template_is_a_render_error(tmp_path: Path, source: str) -> None:
    (tmp_path / "broken.j2").write_text(source)
    with pytest.raises(RenderError) as raised:
        Renderer(tmp_path).render("broken", render_context(_action(), None, None))
    assert raised.value.reason == TEMPLATE_ERROR


def test_offer_text() -> None:
    assert offer_text({"type": "percent_off", "value": 20}) == "20% off"
    assert offer_text({"type": "percent_off", "value": 20.0}) == "20% off"
    assert offer_text({"type": "free_shipping", "value": None}) == "free shipping"
    assert offer_text({"type": "mystery_box", "value": "small"}) == "mystery box (small)"
    assert offer_text(None) == ""


def test_the_message_id_derives_from_the_action_id_and_the_body_survives_dot_stuffing() -> None:
    action = _action()
    rendered = Renderer().render("at_risk_we_miss_you", render_context(action, None, Contact("ann@example.com", "Ann")))
    message = build_message(rendered, action_id=action.action_id, sender="news@shop.example", sender_name="Shop",
                            recipient=Contact("ann@example.com", "Ann"), message_id_domain="shop.example", now=datetime.now(UTC))
    assert message["Message-ID"] == f"<{action.action_id}@shop.example>"
    assert message["To"] == "Ann <ann@example.com>" and message["From"] == "Shop <news@shop.example>"
    data = dot_stuffed(message)
    assert data.endswith(b"\r\n") and b"\n." not in data.replace(b"\n..", b"")
    parsed = message_from_bytes(data.replace(b"\r\n..", b"\r\n."), policy=policy.default)
    assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == rendered.text  # type: ignore[union-attr]
