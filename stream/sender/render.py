"""Templates (Jinja2) to a ready-to-send message. Pure but for reading template files.

One file per template name, ``<name>.j2``, with three blocks::

    {% block subject %}We miss you, {{ name or "friend" }}{% endblock %}
    {% block text %}...plain text body...{% endblock %}
    {% block html %}...optional HTML body...{% endblock %}

The shipped ones (``stream/sender/templates/``) extend ``_layout.j2``, which builds the
text and HTML parts from a single ``body`` block. Files in ``templates_dir`` override
the shipped ones name by name. The HTML block is rendered with autoescaping on, the subject and text
blocks with it off: the loader serves each file under two names, ``<name>`` and
``<name>#html``, and autoescaping is chosen by name. Templates run in Jinja2's sandbox
with ``StrictUndefined``: a typo in a variable name fails the action (recorded, never a
crash) instead of sending "Hello ," to customers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Callable

from jinja2 import BaseLoader, ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

from stream.sender.action import Action
from stream.sender.contacts import Contact
from stream.sender.eligibility import Profile

DEFAULT_TEMPLATES = Path(__file__).parent / "templates"
SUFFIX = ".j2"
HTML_VARIANT = "#html"
# Names starting with "_" are partials (the shared layout), not templates of their own.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# Permanent failure reasons (segments_actions_failed_total{kind="permanent"} and the DLQ).
TEMPLATE_MISSING = "template_missing"
TEMPLATE_ERROR = "template_error"


class RenderError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


class _TwoNameLoader(BaseLoader):
    """Serves ``<name>.j2`` as ``<name>`` and as ``<name>#html`` (see the module docstring)."""

    def __init__(self, inner: BaseLoader) -> None:
        self.inner = inner

    def get_source(self, environment: Environment, template: str) -> tuple[str, str | None, Callable[[], bool] | None]:
        base = template.removesuffix(HTML_VARIANT)
        if not _NAME.fullmatch(base) or ".." in base:
            raise TemplateNotFound(template)
        return self.inner.get_source(environment, base + SUFFIX)

    def list_templates(self) -> list[str]:
        return self.inner.list_templates()


class _Environment(SandboxedEnvironment):
    def join_path(self, template: str, parent: str) -> str:
        # {% extends %} and {% include %} from the HTML variant load the HTML variant of the
        # layout too, so the layout's own variables are escaped as well.
        if parent.endswith(HTML_VARIANT) and not template.endswith(HTML_VARIANT):
            return template + HTML_VARIANT
        return template


class Renderer:
    def __init__(self, templates_dir: str | Path | None = None) -> None:
        folders = [str(templates_dir)] if templates_dir else []
        folders.append(str(DEFAULT_TEMPLATES))
        self.environment = _Environment(
            loader=_TwoNameLoader(ChoiceLoader([FileSystemLoader(folder) for folder in folders])),
            autoescape=lambda name: bool(name and name.endswith(HTML_VARIANT)),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.environment.filters["offer_text"] = offer_text

    def render(self, template: str | None, context: dict[str, Any]) -> Rendered:
        """The three parts of template ``template``; RenderError says why not."""
        if not template:
            raise RenderError(TEMPLATE_MISSING, "the action names no template")
        try:
            plain = _resolved(self.environment.get_template(template), context)
            if "subject" not in plain.blocks or "text" not in plain.blocks:
                raise RenderError(TEMPLATE_ERROR, f"{template}: needs a subject and a text block")
            subject = _block(plain, "subject")
            text = _block(plain, "text").strip() + "\n"
            html = None
            if "html" in plain.blocks:
                escaped = _resolved(self.environment.get_template(template + HTML_VARIANT), context)
                html = _block(escaped, "html").strip() + "\n"
        except RenderError:
            raise
        except TemplateNotFound:
            raise RenderError(TEMPLATE_MISSING, f"no template {template!r}") from None
        except Exception as error:  # syntax errors, undefined names, sandbox violations
            raise RenderError(TEMPLATE_ERROR, f"{template}: {type(error).__name__}: {error}") from None
        # One line, and short enough for every mail client: a header cannot hold a newline.
        subject = " ".join(subject.split())[:250]
        if not subject:
            raise RenderError(TEMPLATE_ERROR, f"{template}: the subject is empty")
        return Rendered(subject, text, html)

    def names(self) -> list[str]:
        """Every template name available (shipped and overrides)."""
        return sorted({name.removesuffix(SUFFIX) for name in self.environment.list_templates()
                       if name.endswith(SUFFIX) and not name.startswith("_")})


_OFFERS = {
    "percent_off": "{value}% off",
    "free_shipping": "free shipping",
    "free_shipping_over": "free shipping on orders over {value}",
    "store_credit": "{value} in store credit",
    "bonus_points": "{value} bonus points",
    "referral_credit": "{value} credit for every friend you refer",
    "bundle_discount": "{value}% off bundles",
    "exclusive_access": "exclusive access",
    "early_access": "early access",
    "surprise_gift": "a surprise gift",
}


def offer_text(offer: Any) -> str:
    """``{"type": "percent_off", "value": 20}`` -> ``"20% off"`` (the ``offer_text`` filter);
    unknown types read as their name, an absent offer as an empty string."""
    if not isinstance(offer, dict) or not offer.get("type"):
        return ""
    kind, value = str(offer["type"]), offer.get("value")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    pattern = _OFFERS.get(kind)
    if pattern is None:
        label = kind.replace("_", " ")
        return f"{label} ({value})" if value not in (None, "") else label
    return pattern.format(value=value)


def _resolved(template: Any, variables: dict[str, Any]) -> Any:
    """A render context whose ``blocks`` hold every block of the template's whole
    ``{% extends %}`` chain, most derived first. Jinja registers a parent's blocks only
    while rendering the child, so render it once (the output is not used)."""
    context = template.new_context(variables)
    for _ in template.root_render_func(context):
        pass
    return context


def _block(context: Any, block: str) -> str:
    return "".join(context.blocks[block][0](context))


PROFILE_KEYS = ("as_of", "recency_days", "frequency", "monetary", "orders_lifetime", "first_order_at", "last_order_at",
                "r", "f", "m", "segment", "tags")


def render_context(action: Action, profile: Profile | None, contact: Contact | None) -> dict[str, Any]:
    """What a template sees. ``profile`` holds the customer's metrics (``recency_days``,
    ``frequency``, ``monetary``, ``last_order_at``, ``r``/``f``/``m``, ``tags``...) or is empty."""
    record = action.record
    trigger = record.get("trigger") or {}
    fresh = profile is not None and profile.as_of >= action.trigger.at
    if fresh or (profile is not None and action.trigger.kind != "segment"):
        segment = profile.segment  # type: ignore[union-attr]
    else:
        segment = action.trigger.to
    return {
        "action_id": action.action_id,
        "customer_id": action.customer_id,
        "name": contact.name if contact else None,
        "segment": segment,
        "trigger": trigger,
        "offer": record.get("offer"),
        "params": record.get("params") or {},
        # Every metric key is there (None when unknown), so templates can test them.
        "profile": {**dict.fromkeys(PROFILE_KEYS), **(profile.record if profile else {})},
        "playbook": record.get("playbook"),
        "action": record.get("action"),
        "expires_at": action.expires_at,
    }


def message_id(action_id: str, domain: str) -> str:
    """The Message-ID of an action's email: derived from the action id, so that the same
    action always yields the same id (receivers and tests can deduplicate on it)."""
    return f"<{action_id}@{domain}>"


def build_message(rendered: Rendered, *, action_id: str, sender: str, sender_name: str | None, recipient: Contact,
                  message_id_domain: str, now: datetime) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = Address(display_name=sender_name or "", addr_spec=sender)
    message["To"] = Address(display_name=recipient.name or "", addr_spec=recipient.email)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id(action_id, message_id_domain)
    message["X-Segments-Action-Id"] = action_id
    message.set_content(rendered.text)
    if rendered.html is not None:
        message.add_alternative(rendered.html, subtype="html")
    return message
