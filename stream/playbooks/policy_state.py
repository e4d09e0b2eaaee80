"""What the playbook engine remembers per customer between changes.

Why so little: the shell keeps one of these per customer in a RocksDB table with a
Kafka changelog, so it must stay small and must not grow with the customer's history.
It holds only what a future decision can still need:

- ``sends``: per capped channel, the ``not_before`` instants of scheduled marketing
  actions still inside that channel's cap window;
- ``cooldowns``: per action with a cooldown, the ``not_before`` instants of its scheduled
  runs still inside the cooldown;
- ``decided``: the ids of the customer's last ``DECIDED_KEEP`` changes. Under
  at-least-once a change can be read twice (a crash before the offset commit); its
  actions went out the first time (the shell delivers them before it stores the state),
  and deciding it again against the updated caps would turn them into "skipped".

``decide`` prunes the rest on every call (see ``pruned``), so the state stays bounded by
the caps and cooldowns themselves (a few instants per channel and action).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from stream.core.json_bytes import dumps_compact

STATE_FORMAT = 1
DECIDED_KEEP = 32


@dataclass(frozen=True, slots=True)
class PolicyState:
    """One customer's policy state. Treat as immutable: ``decide`` returns a new one."""

    sends: dict[str, tuple[int, ...]] = field(default_factory=dict)  # channel -> sorted epoch ms
    cooldowns: dict[str, tuple[int, ...]] = field(default_factory=dict)  # action -> sorted epoch ms
    decided: tuple[str, ...] = ()  # change ids, oldest first

    def with_decided(self, change_id: str) -> PolicyState:
        return PolicyState(self.sends, self.cooldowns, (*self.decided, change_id)[-DECIDED_KEEP:])

    def to_bytes(self) -> bytes:
        """Compact JSON (short keys: it is stored once per customer), sorted keys so equal
        states are equal bytes."""
        doc: dict[str, Any] = {"f": STATE_FORMAT}
        if self.sends:
            doc["s"] = {k: list(v) for k, v in self.sends.items()}
        if self.cooldowns:
            doc["c"] = {k: list(v) for k, v in self.cooldowns.items()}
        if self.decided:
            doc["d"] = self.decided
        return dumps_compact(doc, option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_bytes(cls, data: bytes) -> PolicyState:
        """Inverse of ``to_bytes``; ``ValueError`` for anything it did not write."""
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not a policy state: {exc}") from None
        if not isinstance(doc, dict) or doc.get("f") != STATE_FORMAT:
            raise ValueError(f"not a policy state of format {STATE_FORMAT}: {data[:80]!r}")
        # States written before 2026-11-28 also hold "r", the rules version of the
        # customer's last change (then compared to tell a rules change); ignored.
        decided = doc.get("d", [])
        if not isinstance(decided, list) or not all(isinstance(c, str) for c in decided):
            raise ValueError("policy state: 'd' must be a list of change ids")
        return cls(_instants(doc.get("s", {}), "s"), _instants(doc.get("c", {}), "c"), tuple(decided))

    def pruned(self, at_ms: int, windows: dict[str, int], cooldowns: dict[str, int]) -> PolicyState:
        """Drop instants no decision at or after ``at_ms`` can need: sends at or before
        ``at_ms - window`` of their channel, cooldown runs at or before ``at_ms -
        cooldown``, and channels or actions the playbook no longer caps or cools down."""
        sends = {
            ch: kept
            for ch, times in self.sends.items()
            if ch in windows and (kept := tuple(t for t in times if t > at_ms - windows[ch]))
        }
        runs = {
            name: kept
            for name, times in self.cooldowns.items()
            if name in cooldowns and (kept := tuple(t for t in times if t > at_ms - cooldowns[name]))
        }
        return PolicyState(sends, runs, self.decided)


def _instants(value: Any, key: str) -> dict[str, tuple[int, ...]]:
    if not isinstance(value, dict):
        raise ValueError(f"policy state: {key!r} must be an object")
    out: dict[str, tuple[int, ...]] = {}
    for name, times in value.items():
        if not isinstance(times, list) or not all(type(t) is int for t in times):
            raise ValueError(f"policy state: {key}.{name} must be a list of integers")
        out[name] = tuple(sorted(times))
    return out
