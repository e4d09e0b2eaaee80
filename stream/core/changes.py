"""The change record (spec §7) and its deterministic id.

Why deterministic ids: the worker may re-process a message after a crash or rebalance,
and a replay of the same input must produce the same output. ``change_id`` is a hash of
what the change *is* (customer, the customer's change sequence number, kind, from/to or
tag/entered, ``at``, cause), so downstream consumers can drop duplicates by id, and the
stream worker and the batch command produce byte-identical ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import orjson

from .timeutil import rfc3339_ms

ChangeKind = Literal["segment", "tag", "erasure"]


@dataclass(frozen=True, slots=True)
class Cause:
    """What made a change happen: an input event, time alone, a change of the rules
    (``event_id`` None for these two), or an erasure request (``event_id`` its id)."""

    kind: Literal["event", "time", "rules", "erasure"]
    event_id: str | None = None
    event_type: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        if self.kind == "erasure":
            return {"kind": "erasure", "event_id": self.event_id}
        if self.kind != "event":
            return {"kind": self.kind}
        return {"kind": "event", "event_id": self.event_id, "event_type": self.event_type}


TIME = Cause("time")
RULES = Cause("rules")


class Change(NamedTuple):
    """One segment change, one tag entered/left, or a customer's erasure. Immutable.

    A NamedTuple rather than a frozen dataclass: a replay builds hundreds of thousands
    of these, and a frozen dataclass of 14 fields is several times slower to construct.

    ``segment``/``tags``/``scores``/``metrics`` describe the customer after *all* changes
    of the same evaluation (so each record is self-contained for consumers).
    ``scores`` is ``{"r","f","m","fm"}`` and ``metrics`` the spec §3 metrics, already in
    their JSON form (all values null for a customer without a counted order).
    """

    change_id: str
    customer_id: str
    kind: ChangeKind
    at: int  # epoch ms
    cause: Cause
    segment: str | None
    tags: tuple[str, ...]
    scores: dict[str, int | None]
    metrics: dict[str, Any]
    rules_version: str
    from_segment: str | None = None  # kind == "segment"
    to_segment: str | None = None  # kind == "segment"
    tag: str | None = None  # kind == "tag"
    entered: bool | None = None  # kind == "tag"
    timezone: str | None = None  # the customer's, when an event named one
    # The customer's change sequence number (1 for its first change; part of change_id,
    # not of the wire form): the worker keys the customer's stored history by it.
    seq: int = 0

    def to_json_dict(self) -> dict[str, Any]:
        """The wire form. ``from``/``to`` only on segment changes, ``tag``/``entered`` only
        on tag changes; the shell adds ``emitted_at``."""
        out: dict[str, Any] = {"change_id": self.change_id, "customer_id": self.customer_id, "kind": self.kind}
        if self.kind == "segment":
            out["from"] = self.from_segment
            out["to"] = self.to_segment
        elif self.kind == "tag":
            out["tag"] = self.tag
            out["entered"] = self.entered
        out["at"] = rfc3339_ms(self.at)
        out["cause"] = self.cause.to_json_dict()
        out["segment"] = self.segment
        out["tags"] = list(self.tags)
        out["scores"] = dict(self.scores)
        out["metrics"] = dict(self.metrics)
        out["rules_version"] = self.rules_version
        if self.timezone is not None:
            out["timezone"] = self.timezone
        return out


def numbered_changes(
    customer_id: str,
    last_seq: int,
    diffs: list[tuple[ChangeKind, tuple[Any, ...]]],
    at: int,
    cause: Cause,
    segment: str | None,
    tags: tuple[str, ...],
    scores: dict[str, int | None],
    metrics: dict[str, Any],
    rules_version: str,
    timezone: str | None,
) -> list[Change]:
    """One change per ``(kind, detail)`` of one evaluation, numbered on from ``last_seq``
    (the customer's count of changes so far). ``detail``: ``(from, to)`` of a segment
    change, ``(tag, entered)`` of a tag change, ``()`` of an erasure."""
    out: list[Change] = []
    seq = last_seq
    for kind, detail in diffs:
        seq += 1
        cid = change_id(customer_id, seq, kind, detail, at, cause)
        if kind == "segment":
            extra = {"from_segment": detail[0], "to_segment": detail[1]}
        elif kind == "tag":
            extra = {"tag": detail[0], "entered": detail[1]}
        else:
            extra = {}
        out.append(
            Change(
                change_id=cid,
                customer_id=customer_id,
                kind=kind,
                at=at,
                cause=cause,
                segment=segment,
                tags=tags,
                scores=scores,
                metrics=metrics,
                rules_version=rules_version,
                timezone=timezone,
                seq=seq,
                **extra,
            )
        )
    return out


def change_id(
    customer_id: str,
    seq: int,
    kind: ChangeKind,
    detail: tuple[Any, ...],
    at: int,
    cause: Cause,
) -> str:
    """32 hex chars of sha256 over the canonical JSON of the change's identity."""
    payload = orjson.dumps(
        [customer_id, seq, kind, list(detail), at, cause.kind, cause.event_id, cause.event_type]
    )
    return hashlib.sha256(payload).hexdigest()[:32]
