"""The schema files: well-formed, loadable, self-consistent, and their examples valid."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from stream.events import REASONS, load_schema, validator
from stream.events import schemas as schemas_module

REPO_SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
ALL = [
    "order", "cart", "email_open", "erasure", "event", "segment_change", "customer_profile", "dead_letter",
    "playbook_action", "playbook_erasure_notice",
]
SEGMENTS = [
    "Champions", "Loyal Customers", "Potential Loyalist", "New Customers", "Promising",
    "Need Attention", "About To Sleep", "At Risk", "Can't Lose Them", "Hibernating", "Lost",
]
TAGS = [
    "one_time_buyer", "repeat_purchaser", "lapsed", "high_spender", "low_spender",
    "coupon_lover", "overdue", "cart_abandoner", "prospect", "engaged_non_buyer",
]


def errors(name: str, instance: Any) -> list[str]:
    return [e.message for e in validator(name).iter_errors(instance)]


def test_every_schema_file_is_known() -> None:
    assert sorted(p.name.removesuffix(".schema.json") for p in REPO_SCHEMAS.glob("*.schema.json")) == sorted(ALL)
    assert schemas_module.schema_names() == sorted(ALL)


@pytest.mark.parametrize("name", ALL)
def test_schema_is_valid_draft_2020_12_with_metadata(name: str) -> None:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/{name}.schema.json")
    assert schema["title"] and schema["description"]
    assert schema["examples"]
    assert json.loads((REPO_SCHEMAS / f"{name}.schema.json").read_text()) == schema


@pytest.mark.parametrize("name", ALL)
def test_examples_are_valid(name: str) -> None:
    for example in load_schema(name)["examples"]:
        assert errors(name, example) == []


def test_load_schema_names_and_fresh_copies() -> None:
    assert load_schema("order") == load_schema("order.schema.json")
    a = load_schema("order")
    a["title"] = "changed"
    assert load_schema("order")["title"] != "changed"
    for bad in ["", "../pyproject", "nope"]:
        with pytest.raises((ValueError, FileNotFoundError)):
            load_schema(bad)


def test_packaged_schemas_are_the_repo_schemas() -> None:
    # stream/events/_schemas links to the top-level schemas/, so the installed package
    # and a source checkout read the same files.
    assert schemas_module.schema_dir().resolve() == REPO_SCHEMAS.resolve()


def test_schema_dir_prefers_packaged_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.resources

    packaged = tmp_path / "_schemas"
    packaged.mkdir()
    (packaged / "order.schema.json").write_text(json.dumps({"$id": "x", "title": "copy"}))
    monkeypatch.setattr(importlib.resources, "files", lambda pkg: tmp_path)
    schemas_module.schema_dir.cache_clear()
    schemas_module._load.cache_clear()
    try:
        assert schemas_module.schema_dir() == packaged
        assert load_schema("order")["title"] == "copy"
    finally:
        monkeypatch.undo()
        schemas_module.schema_dir.cache_clear()
        schemas_module._load.cache_clear()
    assert schemas_module.schema_dir().resolve() == REPO_SCHEMAS.resolve()


def test_input_schemas_follow_the_contract() -> None:
    for name in ["order", "cart", "email_open"]:
        schema = load_schema(name)
        props = schema["properties"]
        assert props["type"] == {"const": name}
        assert schema.get("additionalProperties", True) is True
        for field in ["event_id", "customer_id"]:
            assert props[field]["minLength"] == 1 and props[field]["maxLength"] == 256
        assert props["occurred_at"]["format"] == "date-time"
        assert props["timezone"]["type"] == "string"
        assert set(schema["required"]) >= {"event_id", "type", "customer_id", "occurred_at"}
        for field, sub in props.items():
            if sub.get("type") == "number":
                assert sub["minimum"] == 0, field
    order = load_schema("order")["properties"]
    assert order["status"]["default"] == "placed"
    assert order["currency"]["pattern"] == "^[A-Z]{3}$"
    assert load_schema("email_open")["properties"]["apple_privacy_open"]["default"] is False


@pytest.mark.parametrize(
    "instance",
    [
        {"type": "order"},
        {"type": "refund", "event_id": "e", "customer_id": "c", "occurred_at": "2024-01-01T00:00:00Z"},
        {"event_id": "e", "customer_id": "c", "occurred_at": "2024-01-01T00:00:00Z"},
        # an order missing its order fields is not an email_open either
        {"type": "order", "event_id": "e", "customer_id": "c", "occurred_at": "2024-01-01T00:00:00Z"},
    ],
)
def test_event_union_rejects(instance: dict[str, Any]) -> None:
    assert errors("event", instance)


def test_erasure_request_follows_the_contract() -> None:
    schema = load_schema("erasure")
    props = schema["properties"]
    assert props["type"] == {"const": "erasure"}
    assert set(schema["required"]) == {"event_id", "type", "customer_id", "occurred_at"}
    for field in ["event_id", "customer_id"]:
        assert props[field]["minLength"] == 1 and props[field]["maxLength"] == 256
    assert props["occurred_at"]["format"] == "date-time"
    assert errors("erasure", {"type": "erasure", "event_id": "x", "customer_id": "c"})  # no instant


def test_event_union_accepts_each_type() -> None:
    for name in ["order", "cart", "email_open", "erasure"]:
        for example in load_schema(name)["examples"]:
            assert errors("event", example) == []


def test_dead_letter_reasons_match_the_decoder() -> None:
    schema = load_schema("dead_letter")
    assert schema["properties"]["reason"]["enum"] == list(REASONS)
    for reason in REASONS:
        assert reason in schema["properties"]["reason"]["description"]


def test_dead_letter_examples_are_consistent() -> None:
    for example in load_schema("dead_letter")["examples"]:
        raw = base64.b64decode(example["original_b64"], validate=True)
        if "original_size" in example:
            assert example["original_size"] == len(raw)


@pytest.mark.parametrize("value", ["", "YQ==", "YWI=", "YWJj", "eyJ0eXBlIjoib3JkZXIifQ=="])
def test_base64_pattern_accepts(value: str) -> None:
    record = copy.deepcopy(load_schema("dead_letter")["examples"][0])
    record["original_b64"] = value
    assert errors("dead_letter", record) == []


@pytest.mark.parametrize("value", ["YQ", "Y===", "YWJj\n", "YW Jj", "YWJj!", "YQ==YQ=="])
def test_base64_pattern_rejects(value: str) -> None:
    record = copy.deepcopy(load_schema("dead_letter")["examples"][0])
    record["original_b64"] = value
    assert errors("dead_letter", record)


def _change(kind: str = "segment") -> dict[str, Any]:
    example = next(e for e in load_schema("segment_change")["examples"] if e["kind"] == kind)
    return copy.deepcopy(example)


def test_segment_change_names() -> None:
    defs = load_schema("segment_change")["$defs"]
    assert defs["segment_name"]["enum"] == SEGMENTS
    assert defs["tag_name"]["enum"] == TAGS
    profile = load_schema("customer_profile")["properties"]
    assert profile["segment"]["anyOf"][0]["enum"] == SEGMENTS
    assert profile["tags"]["items"]["enum"] == TAGS


@pytest.mark.parametrize(
    ("kind", "mutate"),
    [
        ("segment", lambda c: c.pop("from")),
        ("segment", lambda c: c.update(to="VIP")),
        ("segment", lambda c: c.update(tag="lapsed")),
        ("segment", lambda c: c.update(change_id="3F2B8C9D0E1A4B5C6D7E8F9A0B1C2D3E")),
        ("segment", lambda c: c.update(change_id="abc")),
        ("segment", lambda c: c.update(change_id="3f2b8c9d0e1a4b5c6d7e8f9a0b1c2d3e\n")),
        ("segment", lambda c: c.update(kind="both")),
        ("segment", lambda c: c.update(at="2024-03-01T12:30:00")),
        ("segment", lambda c: c.update(cause={"kind": "event", "event_id": "e"})),
        ("segment", lambda c: c.update(cause={"kind": "event", "event_id": "e", "event_type": "refund"})),
        ("segment", lambda c: c.update(cause={"kind": "time", "event_id": "e"})),
        ("segment", lambda c: c.update(cause={"kind": "clock"})),
        ("segment", lambda c: c["scores"].update(r=None)),
        ("segment", lambda c: c["scores"].update(r=6)),
        ("segment", lambda c: c["scores"].update(fm=0)),
        ("segment", lambda c: c["scores"].pop("fm")),
        ("segment", lambda c: c["metrics"].update(monetary=None)),
        ("segment", lambda c: c["metrics"].update(recency_days=-1)),
        ("segment", lambda c: c["metrics"].update(frequency=1.5)),
        ("segment", lambda c: c["metrics"].update(last_order_at="yesterday")),
        ("segment", lambda c: c.update(tags=["lapsed", "lapsed"])),
        ("segment", lambda c: c.update(tags=["vip"])),
        ("segment", lambda c: c.update(backfill="yes")),
        ("segment", lambda c: c.update(extra=1)),
        ("segment", lambda c: c.pop("rules_version")),
        ("segment", lambda c: c.pop("emitted_at")),
        ("tag", lambda c: c.pop("entered")),
        ("tag", lambda c: c.update(entered=1)),
        ("tag", lambda c: c.update(tag="vip")),
        ("tag", lambda c: c.update({"from": None})),
        ("erasure", lambda c: c.update({"from": "Champions"})),
        ("erasure", lambda c: c.update(tag="lapsed", entered=False)),
        ("erasure", lambda c: c.update(timezone="Europe/Paris")),
        ("erasure", lambda c: c.update(segment="Champions")),
        ("erasure", lambda c: c.update(tags=["lapsed"])),
        ("erasure", lambda c: c["scores"].update(r=5, f=5, m=5, fm=5)),
        ("erasure", lambda c: c.update(cause={"kind": "event", "event_id": "e", "event_type": "order"})),
        ("erasure", lambda c: c.update(cause={"kind": "erasure"})),
        ("segment", lambda c: c.update(cause={"kind": "erasure", "event_id": "e", "event_type": "erasure"})),
    ],
)
def test_segment_change_rejects(kind: str, mutate: Any) -> None:
    change = _change(kind)
    assert errors("segment_change", change) == []
    mutate(change)
    assert errors("segment_change", change)


def test_segment_change_accepts_variants() -> None:
    change = _change("segment")
    change.update({"from": "Champions", "to": None, "cause": {"kind": "time"}, "backfill": True})
    assert errors("segment_change", change) == []
    change = _change("tag")
    change.update(tag="cart_abandoner", entered=False)
    assert errors("segment_change", change) == []
    # What an erasure emits before its record: the customer leaves segment and tags.
    change = _change("segment")
    change.update({"from": "Champions", "to": None, "cause": {"kind": "erasure", "event_id": "erase-1"}})
    assert errors("segment_change", change) == []


def _profile(with_orders: bool = True) -> dict[str, Any]:
    examples = load_schema("customer_profile")["examples"]
    return copy.deepcopy(examples[0] if with_orders else examples[1])


@pytest.mark.parametrize(
    ("with_orders", "mutate"),
    [
        (True, lambda p: p.update(segment=None)),
        (True, lambda p: p.update(r=None)),
        (True, lambda p: p.update(m=0)),
        (True, lambda p: p.update(monetary=-1)),
        (True, lambda p: p.update(segment="VIP")),
        (True, lambda p: p.update(tags=["prospect", "prospect"])),
        (True, lambda p: p.pop("rules_version")),
        (True, lambda p: p.update(fm=3)),
        (True, lambda p: p.update(as_of="2024-06-01")),
        (False, lambda p: p.update(recency_days=3)),
        (False, lambda p: p.update(segment="Lost")),
        (False, lambda p: p.pop("first_order_at")),
    ],
)
def test_customer_profile_rejects(with_orders: bool, mutate: Any) -> None:
    profile = _profile(with_orders)
    assert errors("customer_profile", profile) == []
    mutate(profile)
    assert errors("customer_profile", profile)


def test_customer_profile_fields_are_the_spec_section_8_fields() -> None:
    schema = load_schema("customer_profile")
    expected = [
        "customer_id", "as_of", "recency_days", "frequency", "monetary", "orders_lifetime",
        "first_order_at", "last_order_at", "r", "f", "m", "segment", "tags", "rules_version",
    ]
    assert list(schema["properties"]) == expected
    assert schema["required"] == expected
