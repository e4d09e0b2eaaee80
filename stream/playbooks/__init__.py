"""The playbook engine's pure core: segment changes in, action records out (no Kafka).

Public API::

    load_playbook(path: str | Path | None, *, rules: Rules | None = None) -> Playbook
                                                      # None: the shipped default_playbook.yaml
    parse_playbook(data: bytes | str, name: str, *, rules: Rules | None = None) -> Playbook
    decide(change: dict, playbook: Playbook, policy_state: PolicyState | None, *,
           now_ms: int, suppressed: bool) -> tuple[list[dict], PolicyState]
    PolicyState.to_bytes() -> bytes / PolicyState.from_bytes(bytes) -> PolicyState
    action_id(change_id: str, playbook_name: str, action_name: str) -> str   # "act-<32 hex>"
    erasure_notice(change: dict, playbook: Playbook) -> dict  # what decide() gives for kind "erasure"
    caused_by_erasure(change: dict) -> bool; is_erasure(change: dict) -> bool
    UnknownKind (a ValueError: a change kind this version does not know)
    email_templates(playbook: Playbook) -> frozenset[str]
    load_suppression(path: str | Path) -> frozenset[str]
    Playbook, PlaybookError, SuppressionListError, playbook.version     # "p1-<12 hex>"

The action records' JSON Schema is ``schemas/playbook_action.schema.json``, the erasure
notices' ``schemas/playbook_erasure_notice.schema.json``; the shell adds ``emitted_at``.

Email templates of the shipped default playbook (the sender ships one Jinja2 template
per name; ``email_templates(load_playbook(None))`` is the authoritative list, and a test
keeps this one equal to it)::

    about_to_sleep_discount, about_to_sleep_remember_when, about_to_sleep_winback,
    at_risk_survey, at_risk_we_miss_you, cant_lose_replenishment, cant_lose_store_credit,
    cart_reminder, cart_reminder_free_shipping, champions_early_access,
    champions_exclusive_offer, champions_premium_upsell, champions_referral_invitation,
    coupon_lover_targeted_coupon, engaged_non_buyer_surprise, hibernating_deep_discount,
    lost_final_comeback, loyal_feedback_request, loyal_loyalty_points,
    loyal_recommendations, low_spender_bundle, need_attention_limited_offer,
    need_attention_recommendations, need_attention_survey, new_customer_onboarding_tips,
    new_customer_second_order_discount, new_customer_welcome, one_time_buyer_second_purchase,
    overdue_replenishment, potential_loyalist_free_shipping_threshold,
    potential_loyalist_membership_invite, potential_loyalist_recommendations,
    promising_intro_offer, promising_social_follow, promising_testimonials,
    prospect_gentle_reminder
"""

from .decide import CHANGE_KINDS, UnknownKind, action_id, decide
from .erasure import caused_by_erasure, erasure_notice, is_erasure
from .loader import DEFAULT_PLAYBOOK_PATH, load_playbook, parse_playbook
from .model import (
    CHANNELS,
    RECHECKS,
    SKIP_REASONS,
    Action,
    Playbook,
    PlaybookError,
    Trigger,
    email_templates,
)
from .policy_state import PolicyState
from .suppression import SuppressionListError, load_suppression, parse_suppression

__all__ = [
    "CHANGE_KINDS",
    "CHANNELS",
    "DEFAULT_PLAYBOOK_PATH",
    "RECHECKS",
    "SKIP_REASONS",
    "Action",
    "Playbook",
    "PlaybookError",
    "PolicyState",
    "SuppressionListError",
    "Trigger",
    "UnknownKind",
    "action_id",
    "caused_by_erasure",
    "decide",
    "email_templates",
    "erasure_notice",
    "is_erasure",
    "load_playbook",
    "load_suppression",
    "parse_playbook",
    "parse_suppression",
]
