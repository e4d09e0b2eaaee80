"""Erasing a customer on request (GDPR Art. 17, CCPA deletion).

Why an erasure is an input event and not an admin command: it must happen at the same
point of the customer's history live, in a replay and in ``segments batch``, so it is
merged with the events in time order like any other (``ErasureRequest``, its own input
topic) and the same code runs it everywhere.

``erase(state, request, rules)``
    Takes effect at the request's instant, or at the customer's latest processed instant
    when that is later (a late request, as spec §7 treats late events). Emits, with cause
    ``erasure``: the segment change to ``None`` (when the customer had a segment) and a
    tag change ``entered: False`` per tag held, so consumers that keep memberships from
    the changes drop the customer without knowing about erasures; then one change of
    kind ``erasure``, for consumers to delete what they keep. None of them carries
    scores, metrics or the time zone. What is left is a stub: the id, the count of changes
    emitted (so a customer who comes back never repeats a change id) and the instant.

    The stub is what keeps an erasure an erasure: an event that occurred at or before it
    and arrives later is ignored by ``apply`` instead of starting a new state from old
    data (a refund of an erased customer's order, say). An event that occurred after it
    starts the customer again from nothing. So is a request itself: one that occurred at
    or before the erasure already made (a redelivery) emits nothing, even when the
    customer has come back since. A later one for a stub with nothing since (the privacy
    team asking again) moves the instant and emits its own ``erasure`` record, so every
    request that takes effect is confirmed on ``segment-changes``.
"""

from __future__ import annotations

from stream.rules import Rules

from .changes import Cause, Change, ChangeKind, numbered_changes
from .events import ErasureRequest
from .metrics import NULL_METRICS
from .params import params_for
from .scoring import NULL_SCORES
from .state import CustomerState


def erase(state: CustomerState | None, request: ErasureRequest, rules: Rules) -> tuple[CustomerState, list[Change]]:
    """The customer erased (module docstring): the stub that replaces ``state`` (None: a
    customer never seen), and the changes, in emission order."""
    if state is None:
        state = CustomerState(request.customer_id)
    elif state.customer_id != request.customer_id:
        raise ValueError(f"erasure of {request.customer_id!r} applied to the state of {state.customer_id!r}")
    elif state.erased_at is not None and request.occurred_at <= state.erased_at:
        return state, []  # covered by the erasure made: what came since is newer than the request
    # A stub with nothing since (asked again) holds no segment or tag: its erasure record alone.
    p = params_for(rules)
    last = state.evaluated_at
    at = request.occurred_at if last is None else max(request.occurred_at, last)
    diffs: list[tuple[ChangeKind, tuple]] = []
    if state.segment is not None:
        diffs.append(("segment", (state.segment, None)))
    diffs.extend(("tag", (tag, False)) for tag in state.tags)
    diffs.append(("erasure", ()))
    changes = numbered_changes(
        state.customer_id, state.seq, diffs, at, Cause("erasure", request.event_id), None, (),
        dict(NULL_SCORES), dict(NULL_METRICS), p.version, None,
    )
    stub = CustomerState(state.customer_id, seq=state.seq + len(changes), rules_tag=p.version_tag, erased_at=at)
    return stub, changes
