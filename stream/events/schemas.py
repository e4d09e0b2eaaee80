"""The JSON Schemas of the project's inputs and outputs, loaded from their files.

The canonical files live in the repository's top-level ``schemas/`` folder. An
installed package may carry copies in ``stream/events/_schemas/`` (a build step
copies them there); that location is tried first, then ``schemas/`` next to the
``stream`` package (a source checkout or an editable install).

Schemas refer to each other by relative ``$ref`` (``event.schema.json`` is the
union of the three input schemas); :func:`registry` resolves those references from
the same files, never from the network.

Validators are compiled once per schema and cached (:func:`validator`); they use a
format checker that checks ``date-time`` (RFC 3339, offset required), which needs
the ``format-nongpl`` extra of ``jsonschema`` (``rfc3339-validator``). Importing this
module fails loudly if that checker is missing, rather than silently skipping
format checks.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = [
    "FORMAT_CHECKER",
    "INPUT_SCHEMAS",
    "OUTPUT_SCHEMAS",
    "fast_check",
    "load_schema",
    "registry",
    "schema_dir",
    "schema_names",
    "validator",
]

INPUT_SCHEMAS = ("order", "cart", "email_open", "event")
OUTPUT_SCHEMAS = ("segment_change", "customer_profile", "dead_letter")
_SUFFIX = ".schema.json"

FORMAT_CHECKER: FormatChecker = Draft202012Validator.FORMAT_CHECKER
if "date-time" not in FORMAT_CHECKER.checkers:  # pragma: no cover - install problem
    raise ImportError(
        "jsonschema cannot check format 'date-time': install jsonschema[format-nongpl] "
        "(rfc3339-validator)"
    )


def _file_name(name: str) -> str:
    """``order``, ``order.schema.json`` -> ``order.schema.json``."""
    base = name[: -len(_SUFFIX)] if name.endswith(_SUFFIX) else name
    if not base or "/" in base or "\\" in base or base.startswith("."):
        raise ValueError(f"not a schema name: {name!r}")
    return base + _SUFFIX


@functools.cache
def schema_dir() -> Path:
    """The folder the schema files are read from (packaged copy first, then the repo's)."""
    try:
        packaged = importlib.resources.files("stream.events") / "_schemas"
        if packaged.is_dir():
            path = Path(str(packaged))
            if path.is_dir() and any(path.glob("*" + _SUFFIX)):
                return path
    except (ModuleNotFoundError, TypeError, NotImplementedError):  # pragma: no cover
        pass
    repo = Path(__file__).resolve().parents[2] / "schemas"
    if repo.is_dir():
        return repo
    raise FileNotFoundError(
        "JSON schemas not found: neither stream/events/_schemas/ in the installed "
        f"package nor {repo}"
    )


def schema_names() -> list[str]:
    """Names (without ``.schema.json``) of every schema file available."""
    return sorted(p.name[: -len(_SUFFIX)] for p in schema_dir().glob("*" + _SUFFIX))


@functools.cache
def _load(file_name: str) -> str:
    return (schema_dir() / file_name).read_text(encoding="utf-8")


def load_schema(name: str) -> dict[str, Any]:
    """The schema ``name`` (``"order"`` or ``"order.schema.json"``) as a fresh dict."""
    file_name = _file_name(name)
    try:
        text = _load(file_name)
    except FileNotFoundError:
        raise FileNotFoundError(f"no schema {file_name} in {schema_dir()}") from None
    return json.loads(text)


@functools.cache
def registry() -> Registry:
    """A ``referencing`` registry holding every schema, under its ``$id`` and file name."""
    reg: Registry = Registry()
    for name in schema_names():
        contents = load_schema(name)
        resource = Resource.from_contents(contents, default_specification=DRAFT202012)
        reg = reg.with_resource(contents["$id"], resource)
    return reg.crawl()


def validator(name: str) -> Draft202012Validator:
    """A compiled, cached Draft 2020-12 validator for schema ``name``, with date-time checks."""
    return _validator(_file_name(name))


@functools.cache
def _validator(file_name: str) -> Draft202012Validator:
    schema = load_schema(file_name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry(), format_checker=FORMAT_CHECKER)


# ----------------------------------------------------------------------------------
# Accept-only fast check.
#
# jsonschema's validator costs ~170 us per input event (mostly its per-keyword
# descend/evolve machinery). The input schemas use a small keyword subset, so
# ``fast_check`` compiles a schema into plain Python predicates with exactly
# jsonschema's semantics for that subset (bool is not a number, enums compare
# strings exactly, pattern uses re.search, date-time uses the same format checker).
# It is only ever used to *accept*: the decoder runs the real jsonschema validator
# on anything the fast check refuses, so every rejection and its detail come from
# jsonschema. A schema using any keyword outside the subset compiles to None and
# the decoder then uses jsonschema for everything. tests/unit/events checks the two
# agree on generated valid and invalid events.

_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "examples", "default",
     "deprecated", "readOnly", "writeOnly"}
)

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "object": (dict,),
    "array": (list,),
    "boolean": (bool,),
    "null": (type(None),),
    "number": (int, float),
    "integer": (int,),  # plus integral floats, below
}

_KEYWORDS = frozenset(
    {"type", "const", "enum", "minLength", "maxLength", "minimum", "pattern", "format",
     "properties", "required", "items", "additionalProperties"}
)


class _Unsupported(Exception):
    pass


def _compile(schema: Any) -> Any:
    """Schema (subset) -> predicate; one flat closure per (sub)schema, no generators."""
    if schema is True:
        return lambda x: True
    if type(schema) is not dict:
        raise _Unsupported(repr(schema))
    unknown = set(schema) - _ANNOTATIONS - _KEYWORDS
    if unknown:
        raise _Unsupported(", ".join(sorted(unknown)))
    if schema.get("additionalProperties", True) is not True:
        raise _Unsupported("additionalProperties")

    types: frozenset[type] | None = None
    integral_floats = False
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        types = frozenset(t for n in names for t in _PY_TYPES[n])
        integral_floats = "integer" in names and "number" not in names
    allowed: frozenset[str] | None = None
    for key in ("const", "enum"):
        if key in schema:
            values = [schema[key]] if key == "const" else schema[key]
            if not all(type(v) is str for v in values):
                raise _Unsupported(f"{key} with non-string values")
            allowed = frozenset(values) if allowed is None else allowed & frozenset(values)
    min_len = schema.get("minLength")
    max_len = schema.get("maxLength")
    minimum = schema.get("minimum")
    if minimum is not None and type(minimum) not in (int, float):
        raise _Unsupported("minimum")
    search = re.compile(schema["pattern"]).search if "pattern" in schema else None
    date_time = False
    if "format" in schema:
        if schema["format"] != "date-time":
            raise _Unsupported(f"format {schema['format']}")
        date_time = True
    conforms = FORMAT_CHECKER.conforms
    required = tuple(schema.get("required", ()))
    props = tuple((k, _compile(v)) for k, v in schema.get("properties", {}).items())
    item = _compile(schema["items"]) if "items" in schema else None

    def check(x: Any) -> bool:
        t = type(x)
        if types is not None and t not in types:
            if not (integral_floats and t is float and x.is_integer()):
                return False
        if allowed is not None and (t is not str or x not in allowed):
            return False
        if t is str:
            if min_len is not None and len(x) < min_len:
                return False
            if max_len is not None and len(x) > max_len:
                return False
            if search is not None and search(x) is None:
                return False
            if date_time and not conforms(x, "date-time"):
                return False
        elif t is int or t is float:
            if minimum is not None and x < minimum:
                return False
        elif t is dict:
            for k in required:
                if k not in x:
                    return False
            for k, sub in props:
                if k in x and not sub(x[k]):
                    return False
        elif t is list and item is not None:
            for v in x:
                if not item(v):
                    return False
        return True

    return check


def fast_check(name: str) -> Any:
    """An accept-only predicate equivalent to schema ``name``'s validator, or None.

    ``fast_check(name)(instance)`` is True exactly when the jsonschema validator finds
    no error; None when the schema uses keywords outside the supported subset.
    """
    return _fast_check(_file_name(name))


@functools.cache
def _fast_check(file_name: str) -> Any:
    try:
        return _compile(load_schema(file_name))
    except _Unsupported:
        return None
