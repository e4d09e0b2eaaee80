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

The record also keeps the rules' content (their TOML). A change of rules that comes
before the sweep is done keeps the rules in between with their instants (``between``)
and starts the sweep over: a customer not reached yet passes through each in turn
(adopting it at its instant, then the time-caused changes under it up to the next
change's instant), so it ends where it would have if every sweep had finished in time,
as ``segments batch --rules-change`` computes it.

A customer may also still be due under the rules it is stamped with when they are
replaced: a tick can leave due customers for later batches (``timers_per_batch``), and a
worker restarted with new rules meanwhile finds them. So the record keeps the replaced
rules' content too (``previous_text``), and a customer is first brought, under its own
rules, to the instant they were replaced (``own_rules``), as a tick fired in full would
have.

Each change has a generation (the record's count of changes), and a customer is stamped
with its rules and their generation (``stamp_of``), not with the rules alone: that is
what lets a change go back mid-sweep to rules customers are still being moved away from
(a rollback). A customer not moved yet still carries the old generation's stamp, so it
is told apart from one moved back, and passes through the rules in between like any.
Generation 0's stamp is the rules' own tag, as stamps were before generations existed.

Some rules decide what a state keeps, and a state built under the old ones cannot be
worked into one built under the new: the business time zone (email-open days are
counted in it), a longer order window (older orders are already folded) and longer
email-open windows (older open days are already dropped). A change of those needs the
history replayed under the new rules (a new app id); ``incompatibilities`` names them.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, replace
from functools import lru_cache

import orjson

from stream.core.params import params_for
from stream.rules import Rules
from stream.rules.loader import parse_rules, render_rules_toml


@dataclass(frozen=True)
class RulesBetween:
    """Rules a partition ran under from ``since`` until the next change, kept while
    customers stamped with older ones may still have to pass through them."""

    version: str
    previous: str | None
    since: int
    rules_text: str
    generation: int = 0

    @property
    def rules(self) -> Rules:
        return rules_from_text(self.rules_text)

    @property
    def stamp(self) -> int:
        return stamp_of(self.rules, self.generation)


@dataclass(frozen=True)
class RulesRecord:
    """``version``: the rules the partition runs under. ``since``: the partition clock
    when they replaced ``previous`` (None: no change since the record began).
    ``swept_to``: the last customer id the sweep adopted (None: not started);
    ``swept``: every stored customer has been visited. ``timezone``, ``window_days``,
    ``open_days_kept``: what the states keep under these rules. ``rules_text`` holds
    these rules (for the next change); while the sweep runs, ``between`` the rules of
    earlier changes whose sweeps it took over, oldest first, and ``previous_text`` the
    rules before the first of those changes (or before these). ``generation``: how many
    changes the partition has taken on (see ``stamp_of``). Records written by engines
    older than ``timers_per_batch`` kept ``rules_text`` only while a sweep ran, and no
    ``previous_text`` (those engines fired every due timer at once: none needs it)."""

    version: str
    timezone: str
    window_days: int
    open_days_kept: int
    since: int | None = None
    previous: str | None = None
    swept_to: str | None = None
    swept: bool = True
    rules_text: str | None = None
    between: tuple[RulesBetween, ...] = ()
    generation: int = 0
    previous_text: str | None = None

    def to_bytes(self) -> bytes:
        fields = asdict(self)
        # A record without a change under way reads as records did before these fields.
        for name in ("rules_text", "between", "previous_text"):
            if not fields[name]:
                del fields[name]
        return orjson.dumps(fields)

    @classmethod
    def from_bytes(cls, raw: bytes) -> RulesRecord:
        fields = orjson.loads(raw)
        fields["between"] = tuple(RulesBetween(**step) for step in fields.get("between", ()))
        return cls(**fields)

    def finished(self, swept_to: str | None) -> RulesRecord:
        """The record once the sweep has visited every stored customer."""
        return replace(self, swept_to=swept_to, swept=True, between=(), previous_text=None)

    def own_rules(self, stamp: int) -> Rules | None:
        """The rules a customer stamped with ``stamp`` is under, when they are among those
        this change replaced (None: unknown, or the record's own)."""
        for step in self.between:
            if step.stamp == stamp:
                return step.rules
        # The rules before the first change whose sweep is not done: one generation before it.
        generation = (self.between[0].generation if self.between else self.generation) - 1
        if self.previous_text is not None and generation >= 0:
            previous = rules_from_text(self.previous_text)
            if stamp_of(previous, generation) == stamp:
                return previous
        return None

    def passage(self, stamp: int) -> list[tuple[Rules, int, int]]:
        """The rules a customer stamped with ``stamp`` passes through before these:
        (rules, adopted at, in effect until), oldest first."""
        steps = list(self.between)
        for index, step in enumerate(steps):
            if step.stamp == stamp:
                steps = steps[index + 1:]
                break
        untils = [step.since for step in steps[1:]] + [self.since]
        return [(step.rules, step.since, until) for step, until in zip(steps, untils) if until is not None]


# The record is read again for every batch: its rules are parsed once.
@lru_cache(maxsize=16)
def rules_from_text(text: str) -> Rules:
    return parse_rules(text, "rules record")


def stamp_of(rules: Rules, generation: int) -> int:
    """What a customer moved to ``rules`` by change number ``generation`` is stamped with
    (``CustomerState.rules_tag``): the rules' own tag for generation 0 (every state
    written before generations existed), else a tag of both."""
    if generation == 0:
        return params_for(rules).version_tag
    return zlib.crc32(f"{rules.version}#{generation}".encode())


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
    if not record.swept and new.version != record.version and record.rules_text is None:
        # Written before records kept their rules' content: the customers the sweep has
        # not reached would skip the rules in between.
        problems.append(
            f"rules: a change of rules is under way; run the worker with {record.version} until "
            "segments_rules_sweep_pending is 0 (the partition is still moving its stored customers to them)"
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
        return replace(record_for(rules), rules_text=render_rules_toml(rules))
    if record.version == rules.version:
        if record.rules_text is None:  # written before records kept their rules
            return replace(record, rules_text=render_rules_toml(rules))
        return record
    problems = incompatibilities(record, rules)
    if problems:
        raise RulesChangeError("; ".join(problems))
    generation = record.generation + 1
    rules_text = render_rules_toml(rules)
    if clock is None:  # no clock, no customers: nothing to move
        return replace(record_for(rules), previous=record.version, generation=generation, rules_text=rules_text)
    between = record.between
    previous_text = record.rules_text
    if not record.swept and record.since is not None and record.rules_text is not None:
        between = (*between, RulesBetween(record.version, record.previous, record.since, record.rules_text, record.generation))
        # Customers the sweep has not reached are still under the rules before it.
        previous_text = record.previous_text
    return replace(
        record_for(rules), since=clock, previous=record.version, swept_to=None, swept=False,
        rules_text=rules_text, between=between, generation=generation, previous_text=previous_text,
    )
