"""Compact, bounded per-customer state and its byte encoding.

Why compact and bounded: the worker keeps one state per customer in a changelogged
table (RocksDB + Kafka); every event rewrites the customer's value. An ever-growing
event list would make state, changelog and restore time grow without bound, so the state
keeps exactly what the rules can still need and folds or drops the rest:

- **Orders** are kept as individual records while they can still count in the window,
  i.e. while ``day(order) > day(L) - window_days`` (``L`` = ``evaluated_at``, the customer's
  latest processed instant; evaluations never happen before ``L``). Older counted orders
  are *folded* into three aggregates (count, first instant, last instant) that give
  ``orders_lifetime``, ``first_order_at``, ``last_order_at`` and recency. Cancelled records
  are kept just as long (so a later ``placed`` of the same order stays cancelled).
- **Held** cancellations/refunds (their order not seen yet) are records with ``at = None``,
  kept until ``day(first hold) <= day(L) - window_days``, then dropped.
- **Cart**: only the latest cart event (instant, and whether the cart is open).
- **Email opens**: counted opens per business day, only for days that can still be in the
  prospect / engaged windows (``day > day(L) - max(prospect.window_days,
  engaged_non_buyer.opens_window_days)``, 30 by default). Day numbers are in the business
  time zone, so a state is tied to its rules' ``timezone`` (a timezone change changes the
  rules version; rebuild state by replaying).
- **Redelivery detection** (the dedupe horizon): 63-bit keys of applied ``event_id``\\s, in
  arrival order, each with the UTC day of the customer's ``L`` right after it was applied.
  An id is kept while it is among the customer's last ``DEDUPE_KEEP_LAST`` (32) applied
  events *or* was applied less than ``DEDUPE_HORIZON_DAYS`` (7) days of customer event time
  ago, and never more than ``DEDUPE_MAX_IDS`` (1024) ids. The count rule covers replays,
  where a customer's clock can jump days between an event and its redelivery; the time
  rule covers busy customers. A redelivery older than both is applied again (for orders
  this is still harmless while the order is in the window: a second ``placed`` is ignored,
  cancelling twice is idempotent, and refund event ids are also kept in their order record
  for as long as the order is, so a refund is never counted twice against an order still
  in the window).

Encoding (``to_bytes``: orjson, keys short on purpose; default-valued keys omitted)::

    {"v": 1,                      # layout version
     "id": customer_id,
     "n": change sequence number (count of changes emitted so far),
     "L": evaluated_at (epoch ms) | null,
     "k": checked_to (epoch ms): time candidates up to here were evaluated, found no change,
     "s": last emitted segment | null,
     "t": [last emitted tags, sorted],
     "f": [folded count, folded first instant, folded last instant],
     "o": [[order_key, at | null, total_micros, refunded_micros (-1 = everything),
            flags (1 discounted, 2 cancelled)
            (, held_since: only when != at or refund keys follow)
            (, [refund event keys]: only when non-empty)], ...],
     "c": [latest cart instant, 1 if open else 0],
     "e": [[business day number, counted opens], ...],
     "d": [[utc day of L when applied, [event keys in arrival order]], ...],
     "z": the customer's IANA time zone (latest event naming one),
     "r": rules tag (``RuleParams.version_tag``) of the rules the customer's segment and
          tags were last worked out under, or the processor's stamp of those rules and
          the change of rules that brought them (``stream/processing/rules_change.py``,
          ``stamp_of``: 15 bytes more per state once a partition's rules have changed);
          absent when it is ``w``'s tag (as it is for every state the worker saves
          before any change of rules) or unknown (states written before it existed),
     "w": [rules tag, next time-caused instant | null]: ``next_due`` as last worked out
          (``due_memo``; absent when not known),
     "x": erased_at: the customer was erased at this instant (``stream/core/erasure.py``);
          events that occurred at or before it are ignored}

Keys (``order_key``, event keys) are the first 8 bytes of BLAKE2b of the id, shifted to
63 bits (collision odds per customer are ~n²/2⁶⁴: negligible).

Measured sizes (``to_bytes()`` length after replaying each history with the default
rules, as the worker stores it, ``w`` included; command: ``.venv/bin/python -m
stream.core._measure``, ids ~30 characters):

- new customer after one email open: 172 bytes
- one-time buyer (1 order, 2 opens, a cart): 312 bytes
- regular (24 orders in 2 years, monthly, 3 refunds, 40 opens, 30 carts): 2,420 bytes
- heavy (200 orders within the window, 100 opens, 100 carts): 11,224 bytes
- 5 years of monthly orders (60 orders, 36 of them folded): 2,390 bytes
- the regular, erased (what is kept: id, change count, erasure instant): 70 bytes

i.e. ~45 bytes per order still in the window, ~21 bytes per remembered event id (at most
32 beyond the last 7 days), ~130 bytes fixed (31 of them ``w``); nothing grows with the
length of the history.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from stream.core.json_bytes import dumps_compact

STATE_LAYOUT = 1
FULL_REFUND = -1  # refunded_micros sentinel: the whole order value was refunded
DEDUPE_HORIZON_DAYS = 7
DEDUPE_KEEP_LAST = 32
DEDUPE_MAX_IDS = 1024
_F_DISCOUNTED = 1
_F_CANCELLED = 2


def id_key(text: str) -> int:
    """63-bit key of an id (event_id, order_id): compact and length-independent."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big") >> 1


@dataclass(slots=True)
class OrderRec:
    """One order still relevant to the window, or a held cancellation/refund (``at`` None)."""

    key: int
    at: int | None = None  # placed instant; None: not placed (yet)
    total: int = 0  # micros, from the placed event
    refunded: int = 0  # micros refunded; FULL_REFUND = all of it
    discounted: bool = False
    cancelled: bool = False
    held_since: int = 0  # instant of the first event seen for this order
    refund_keys: list[int] = field(default_factory=list)

    @property
    def counted(self) -> bool:
        return self.at is not None and not self.cancelled

    @property
    def value(self) -> int:
        """Value after refunds, never below zero (micros)."""
        if self.refunded == FULL_REFUND:
            return 0
        return max(0, self.total - self.refunded)


@dataclass(slots=True)
class CustomerState:
    """Everything the core remembers about one customer (see the module docstring)."""

    customer_id: str
    seq: int = 0
    evaluated_at: int | None = None
    checked_to: int | None = None
    segment: str | None = None
    tags: tuple[str, ...] = ()
    folded_count: int = 0
    folded_first: int | None = None
    folded_last: int | None = None
    orders: dict[int, OrderRec] = field(default_factory=dict)
    cart_at: int | None = None
    cart_open: bool = False
    open_days: dict[int, int] = field(default_factory=dict)
    seen: list[tuple[int, int]] = field(default_factory=list)  # (utc day of stamp, event key)
    # The customer's IANA time zone, from the latest event that named one (playbooks'
    # quiet hours); None: the business time zone applies.
    timezone: str | None = None
    # The rules the segment and tags were last worked out under (``RuleParams.version_tag``):
    # a state carried over a rules change is adopted once (``engine.adopt_rules``).
    rules_tag: int | None = None
    # The customer was erased at this instant (``stream/core/erasure.py``): everything
    # above was dropped then but the id and ``seq`` (so change ids never repeat); events
    # that occurred at or before it are ignored, so a late one cannot bring data back.
    erased_at: int | None = None
    # ``timers.next_due_at`` as last worked out, tagged with the rules it was worked out
    # for: (``RuleParams.version_tag``, instant or None). Derived, but encoded: a worker
    # loads a customer's state for every event, and without it would rebuild the summary
    # just to learn that nothing is due yet (and where the customer's timer is). Whoever
    # changes what ``next_due`` depends on (the records, ``evaluated_at``, ``checked_to``)
    # drops it: ``records_changed`` and the engine's ``_checked``.
    due_memo: tuple[int, int | None] | None = field(default=None, compare=False, repr=False)
    # Not part of the value (never encoded or compared): the ``summary.RecordSummary`` of
    # the current records, built on first use. Stale once orders, folded aggregates, the
    # cart or the open days change: whoever changes them calls ``records_changed()`` (in
    # the core only the engine does, in ``_apply_event`` and ``_prune``).
    summary: Any = field(default=None, init=False, compare=False, repr=False)
    # Likewise derived and dropped with it: the engine's evaluation at ``evaluated_at``
    # and the rule parameters it used, for ``profile`` (the worker publishes one for
    # every customer a batch touches).
    evaluation: tuple[Any, Any] | None = field(default=None, init=False, compare=False, repr=False)
    # The engine's latest evaluation at a time candidate, with the summary it was made
    # from: (summary, instant, evaluation). The look-ahead and the advance that follows
    # it evaluate the same candidate; valid while ``summary`` is the current one.
    candidate_evaluation: tuple[Any, int, Any] | None = field(default=None, init=False, compare=False, repr=False)

    @property
    def erased(self) -> bool:
        """Erased, and no event since: the state holds nothing about the customer, who
        counts as not stored (no profile, not in the census or a snapshot)."""
        return self.erased_at is not None and self.evaluated_at is None

    def records_changed(self) -> None:
        """Drop what is derived from the records (the summary, the last evaluations): they
        have changed."""
        self.summary = None
        self.evaluation = None
        self.candidate_evaluation = None
        self.due_memo = None

    # -- redelivery ----------------------------------------------------------------

    def has_seen(self, key: int) -> bool:
        for _, k in self.seen:  # a plain loop: any() over a generator is ~2x slower here
            if k == key:
                return True
        return False

    def remember(self, key: int, stamp: int) -> None:
        """Record an applied event id; ``stamp`` is ``evaluated_at`` after applying it,
        which never decreases, so ``seen`` stays sorted by stamp."""
        self.seen.append((stamp // 86_400_000, key))

    def prune_seen(self) -> None:
        """Keep an id while it is among the last ``DEDUPE_KEEP_LAST`` applied *or* was applied
        within ``DEDUPE_HORIZON_DAYS`` of the customer's ``evaluated_at``; never more than
        ``DEDUPE_MAX_IDS``."""
        if self.evaluated_at is None:
            return
        horizon = self.evaluated_at // 86_400_000 - DEDUPE_HORIZON_DAYS
        drop = 0
        n = len(self.seen)
        while n - drop > DEDUPE_KEEP_LAST and self.seen[drop][0] <= horizon:
            drop += 1
        drop = max(drop, n - DEDUPE_MAX_IDS)
        if drop > 0:
            del self.seen[:drop]

    # -- encoding --------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Compact orjson encoding (layout in the module docstring). Deterministic.

        On the worker's hot path (every event stores its customer's state), so the
        document is built with as little per-field Python work as the layout allows."""
        doc: dict = {"v": STATE_LAYOUT, "id": self.customer_id}
        if self.seq:
            doc["n"] = self.seq
        if self.evaluated_at is not None:
            doc["L"] = self.evaluated_at
        if self.checked_to is not None:
            doc["k"] = self.checked_to
        if self.segment is not None:
            doc["s"] = self.segment
        if self.tags:
            doc["t"] = self.tags  # orjson writes tuples as arrays
        if self.folded_count:
            doc["f"] = (self.folded_count, self.folded_first, self.folded_last)
        if self.orders:
            doc["o"] = [_encode_order(r) for r in sorted(self.orders.values(), key=_order_sort_key)]
        if self.cart_at is not None:
            doc["c"] = (self.cart_at, 1 if self.cart_open else 0)
        if self.open_days:
            doc["e"] = sorted(self.open_days.items())
        if self.seen:
            # [[utc day, [keys applied while L was on that day]], ...] in arrival order
            groups: list[list] = []
            keys: list[int] = []
            current = None
            for day, key in self.seen:
                if day != current:
                    keys = []
                    groups.append([day, keys])
                    current = day
                keys.append(key)
            doc["d"] = groups
        if self.timezone is not None:
            doc["z"] = self.timezone
        due_memo = self.due_memo
        if due_memo is not None:
            doc["w"] = due_memo
        if self.rules_tag is not None and (due_memo is None or due_memo[0] != self.rules_tag):
            doc["r"] = self.rules_tag
        if self.erased_at is not None:
            doc["x"] = self.erased_at
        return dumps_compact(doc)

    @classmethod
    def from_bytes(cls, data: bytes) -> CustomerState:
        doc = orjson.loads(data)
        get = doc.get
        if get("v") != STATE_LAYOUT:
            raise ValueError(f"unsupported customer state layout {get('v')!r}")
        orders: dict[int, OrderRec] = {}
        for row in get("o", ()):
            key, at, flags, n = row[0], row[1], row[4], len(row)
            orders[key] = OrderRec(
                key,
                at,
                row[2],  # total
                row[3],  # refunded
                bool(flags & _F_DISCOUNTED),
                bool(flags & _F_CANCELLED),
                row[5] if n > 5 else at,  # held_since
                row[6] if n > 6 else [],  # refund_keys
            )
        folded_count, folded_first, folded_last = get("f", (0, None, None))
        cart_at, cart_open = get("c", (None, 0))
        due_memo = get("w")
        return cls(
            doc["id"],
            get("n", 0),
            get("L"),
            get("k"),
            get("s"),
            tuple(get("t", ())),
            folded_count,
            folded_first,
            folded_last,
            orders,
            cart_at,
            bool(cart_open),
            dict(get("e", ())),
            [(day, key) for day, keys in get("d", ()) for key in keys],
            get("z"),
            get("r", None if due_memo is None else due_memo[0]),
            get("x"),
            None if due_memo is None else (due_memo[0], due_memo[1]),
        )


def _order_sort_key(r: OrderRec) -> tuple[int, int]:
    return (r.held_since, r.key)


def _encode_order(r: OrderRec) -> list:
    row: list = [
        r.key,
        r.at,
        r.total,
        r.refunded,
        (_F_DISCOUNTED if r.discounted else 0) | (_F_CANCELLED if r.cancelled else 0),
    ]
    if r.refund_keys or r.held_since != r.at:
        row.append(r.held_since)
    if r.refund_keys:
        row.append(r.refund_keys)
    return row
