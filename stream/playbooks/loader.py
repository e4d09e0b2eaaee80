"""Reading the playbook file (YAML, PyYAML's safe loader).

Why the error handling is this careful: the person fixing a playbook is usually a
marketer. Every problem is reported as ``<file>: <field path>: <what is wrong>``
(``playbook.yaml: actions[3] (cart_reminder).trigger.enter_tag: unknown tag 'cart'``),
YAML syntax errors as ``<file>: line <n>: ...``, and unknown keys are errors, so a
misspelt key can never silently fall back to a default.

Why a stricter YAML loader than ``yaml.safe_load``: YAML 1.1 reads ``21:00`` as the
number 1260 (base 60) and ``2024-03-01`` as a date, and lets a duplicated key silently
replace the first. Here clock times and dates stay strings and a duplicated key is an
error with its line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from stream.rules import Rules, load_rules
from stream.rules.loader import error_lines

from .model import Playbook, PlaybookError

DEFAULT_PLAYBOOK_PATH = Path(__file__).with_name("default_playbook.yaml")


class _Loader(yaml.SafeLoader):
    """Safe loader without YAML 1.1's sexagesimal numbers and timestamps, and with
    duplicate keys rejected."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key]})", key_node.start_mark
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


_INT = re.compile(
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+)$""",
    re.X,
)
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def load_playbook(path: str | Path | None = None, *, rules: Rules | None = None) -> Playbook:
    """Load and validate a playbook file; ``None`` loads the shipped default playbook.

    ``rules`` (default: the shipped rules) supplies the segment names triggers may use
    and the business time zone used when the file sets no ``policies.timezone``.
    """
    file = Path(path) if path is not None else DEFAULT_PLAYBOOK_PATH
    name = str(file)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise PlaybookError(f"{name}: cannot read playbook file: {exc.strerror or exc}") from None
    return parse_playbook(raw, name, rules=rules)


def parse_playbook(data: bytes | str, name: str = "playbook.yaml", *, rules: Rules | None = None) -> Playbook:
    """Validate a playbook from YAML text; ``name`` is used in error messages."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8", errors="strict")
        except UnicodeDecodeError as exc:
            raise PlaybookError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    else:
        text = data
    try:
        doc = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise PlaybookError(f"{name}: {where}invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise PlaybookError(f"{name}: invalid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise PlaybookError(f"{name}: must be a mapping with name, policies and actions (got {type(doc).__name__})")
    rules = rules if rules is not None else load_rules(None)
    context = {"segments": rules.segments.names, "default_timezone": rules.timezone}
    try:
        return Playbook.model_validate(doc, context=context)
    except ValidationError as exc:
        raise PlaybookError(error_lines(name, exc, lambda err: _describe(err, doc))) from None


def _loc_to_path(loc: tuple[Any, ...], doc: Any) -> str:
    """``("actions", 3, "trigger")`` -> ``actions[3] (cart_reminder).trigger``: the action's
    name helps find it in a long file."""
    out = ""
    node = doc
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            if i == 1 and loc[0] == "actions" and isinstance(node, dict) and isinstance(node.get("name"), str):
                out += f" ({node['name']})"
        else:
            out += ("." if out else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Playbook
    for part in loc:
        if isinstance(part, int):
            continue  # list items: the annotation below is unwrapped to the item model
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        ann = field.annotation
        for arg in (ann, *getattr(ann, "__args__", ())):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                model = arg
                break
        else:
            return None
    return model


def _describe(err: dict[str, Any], doc: Any) -> str:
    loc = tuple(err.get("loc", ()))
    # The alias is the file's key: show "from", not "from_segment".
    loc = tuple({"from_segment": "from", "to_segment": "to"}.get(p, p) if isinstance(p, str) else p for p in loc)
    msg = str(err.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    etype = err.get("type")
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
        msg = f"not allowed as a key: {msg}"
    if etype in ("model_type", "model_attributes_type", "dict_type"):
        msg = "must be a mapping (key: value, ...)"
    elif etype == "tuple_type":
        msg = "must be a list"
    elif etype == "missing":
        msg = "required, missing"
    elif etype == "string_pattern_mismatch":
        msg = f"{err.get('input')!r} must be lowercase letters, digits and '_' (templates also '-'), starting with a letter"
    if etype == "extra_forbidden":
        parent = _model_at(loc[:-1])
        known = ", ".join(
            (f.alias or k) for k, f in parent.model_fields.items() if k != "kind"
        ) if parent is not None else ""
        msg = f"unknown key (known keys here: {known})" if known else "unknown key"
    if msg.startswith("@"):
        # A model validator naming a sub-field: "@template: an email action must ..."
        sub, _, rest = msg[1:].partition(": ")
        return f"{_loc_to_path(loc + tuple(_split_sub(sub)), doc)}: {rest}"
    path = _loc_to_path(loc, doc)
    return f"{path}: {msg}" if path else msg


def _split_sub(sub: str) -> list[Any]:
    """``actions[5].name`` -> ``["actions", 5, "name"]`` (to add the action's name)."""
    parts: list[Any] = []
    for token in re.findall(r"[^.\[\]]+|\[\d+\]", sub):
        parts.append(int(token[1:-1]) if token.startswith("[") else token)
    return parts
