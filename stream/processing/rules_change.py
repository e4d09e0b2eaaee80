"""A partition's record of the rules it runs under, and how a change of rules is taken on.

Why: the rules file can change under a running deployment (new thresholds from
``segments calibrate``, a changed grid). Each customer's state remembers what it last
emitted and which time candidates it already checked, and the timer index holds the next
instants worked out under the old rules; without a changeover, a customer would jump to
its new segment at whatever event or old timer came next, with that event as the cause,
and a change the new rules make due sooner would fire late.

So each partition keeps a record: the rules version it runs under, and, after a change,
``since`` (the partition clock when the new rules were first seen: they take effect at
that instant) and how far the sweep over the partition's customers has got. A customer
stamped with other rules adopts the new ones at ``since`` whenever it is loaded (for an
event, a timer, or the sweep), so what each customer emits does not depend on when the
sweep reaches it: the changes the new rules make at ``since`` (cause ``rules``), then
the time-caused ones after it, with their own instants.

A change of rules cannot begin while the previous one is still being swept: the
customers not reached yet would skip the rules in between (the record keeps their
version, not their content).

Some rules decide what a state keeps, and a state built under the old ones cannot be
worked into one built under the new: the business time zone (email-open days are
counted in it), a longer order window (older orders are already folded) and longer
email-open windows (older open days are already dropped). A change of those needs the
history replayed under the new rules (a new app id); ``incompatibilities`` names them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import orjson

from stream.core.params import params_for
from stream.rules import Rules


@dataclass(frozen=True)
class RulesRecord:
    """``version``: the rules the partition runs under. ``since``: the partition clock
    when they replaced ``previous`` (None: no change since the record began).
    ``swept_to``: the last customer id the sweep adopted (None: not started);
    ``swept``: every stored customer has been visited. ``timezone``, ``window_days``,
    ``open_days_kept``: what the states keep under these rules."""

    version: str
    timezone: str
    window_days: int
    open_days_kept: int
    since: int | None = None
    previous: str | None = None
    swept_to: str | None = None
    swept: bool = True

    def to_bytes(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_bytes(cls, raw: bytes) -> RulesRecord:
        return cls(**orjson.loads(raw))


class RulesChangeError(ValueError):
    """The new rules differ from the stored states' in what the states keep."""


def record_for(rules: Rules) -> RulesRecord:
    """The record of a partition that has only ever run under ``rules``."""
    return RulesRecord(
        version=rules.version,
        timezone=rules.timezone,
        window_days=rules.window_days,
        open_days_kept=params_for(rules).open_days_kept,
    )


def incompatibilities(record: RulesRecord, rules: Rules) -> list[str]:
    """Why states kept under ``record``'s rules cannot be carried over to ``rules``
    (empty: they can), one ``field: reason`` each."""
    new = record_for(rules)
    problems = []
    if not record.swept and new.version != record.version:
        # The customers the sweep has not reached would skip the rules in between
        # (only their version is kept, not their content).
        problems.append(
            f"rules: the partition is still moving its stored customers to {record.version}, a change of rules "
            "under way; run the worker with those rules until it is done (segments_rules_sweep_pending)"
        )
    if new.timezone != record.timezone:
        problems.append(
            f"timezone: the stored states count email-open days in {record.timezone}, the new rules in {new.timezone}"
        )
    if new.window_days > record.window_days:
        problems.append(
            f"window_days: raised from {record.window_days} to {new.window_days}, but orders older than "
            f"{record.window_days} days are already folded out of the stored states"
        )
    if new.open_days_kept > record.open_days_kept:
        problems.append(
            f"tags.prospect.window_days / tags.engaged_non_buyer.opens_window_days: the stored states keep "
            f"{record.open_days_kept} days of email opens, the new rules need {new.open_days_kept}"
        )
    return problems


def changeover(record: RulesRecord | None, rules: Rules, clock: int | None) -> RulesRecord:
    """The partition's record once it runs under ``rules`` (the same record when nothing
    changed). ``clock``: the partition clock before anything runs under the new rules.

    Raises RulesChangeError when the stored states cannot be carried over."""
    if record is None:  # a new partition, or one kept before records existed
        return record_for(rules)
    if record.version == rules.version:
        return record
    problems = incompatibilities(record, rules)
    if problems:
        raise RulesChangeError("; ".join(problems))
    return replace(
        record_for(rules), since=clock, previous=record.version, swept_to=None, swept=clock is None,
    )
