"""The rules file: model, validation, shipped defaults, version hash (pure Python).

Public API::

    load_rules(path: str | Path | None) -> Rules      # None: the shipped default_rules.toml
    parse_rules(data: bytes | str, name: str) -> Rules
    render_rules_toml(rules: Rules) -> str             # load(render(x)) == x
    calibrate(profiles_metrics, base=None) -> Rules    # quintile thresholds
    Rules, RulesError, rules.version                   # "r1-<12 hex>" content hash
"""

from .calibrate import calibrate
from .loader import DEFAULT_RULES_PATH, load_rules, parse_rules, render_rules_toml
from .model import RULES_SCHEMA, SEGMENT_NAMES, TAG_NAMES, Rules, RulesError

__all__ = [
    "DEFAULT_RULES_PATH",
    "RULES_SCHEMA",
    "SEGMENT_NAMES",
    "TAG_NAMES",
    "Rules",
    "RulesError",
    "calibrate",
    "load_rules",
    "parse_rules",
    "render_rules_toml",
]
