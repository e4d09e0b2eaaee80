"""What a failed SMTP attempt means for the action, and when to try again. Pure.

SMTP accepts a message at exactly one point: the 250 reply to the end-of-data marker
(``<CRLF>.<CRLF>``, RFC 5321 section 4.1.1.4). Before the marker is on the wire, a
server that loses the connection discards the partial transaction, so any failure up to
there can be retried without risk of a second copy. After it, a lost reply leaves the
outcome unknown: the server may have queued the message (RFC 1047). That attempt is
*in doubt* and is never retried: at most one email per action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Stage = Literal["connect", "helo", "starttls", "auth", "mail", "rcpt", "data", "data_end"]
Kind = Literal["transient", "permanent", "in_doubt"]
# 5xx at these stages is about this message or recipient: retrying cannot help. At the
# others (greeting, HELO, TLS, AUTH, MAIL FROM) it is about the server or our settings,
# true for every action alike: failing them all to the DLQ would empty the queue on a
# misconfiguration, so they are retried until fixed (or the action expires).
MESSAGE_STAGES: frozenset[str] = frozenset({"rcpt", "data", "data_end"})


@dataclass(frozen=True)
class Failure:
    kind: Kind
    stage: Stage
    code: int | None  # the SMTP reply code; None when no reply came (network error)
    reply: str  # the reply text, or the network error


def classify(stage: Stage, code: int | None) -> Kind:
    """Transient (retry), permanent (dead letter) or in doubt (never retry)."""
    if code is None:
        return "in_doubt" if stage == "data_end" else "transient"
    if 500 <= code < 600:
        return "permanent" if stage in MESSAGE_STAGES else "transient"
    # 4xx, and anything unexpected (a 3xx out of place, a garbled reply): the server did
    # not take the message, so trying again later is safe.
    return "transient"


def backoff_seconds(attempt: int, *, initial: float, maximum: float, jitter: float) -> float:
    """Delay before retry number ``attempt`` (1 = the first retry): exponential, capped at
    ``maximum``, scaled by ``jitter`` in [0, 1] onto [50%, 100%] of that ("equal jitter"),
    so that many actions failing together do not retry in lock-step, yet each waits at
    least half the nominal delay."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    nominal = min(maximum, initial * 2 ** min(attempt - 1, 62))
    return nominal * (0.5 + 0.5 * min(1.0, max(0.0, jitter)))
