import pytest

from stream.sender.redact import redact
from stream.sender.retry import backoff_seconds, classify


@pytest.mark.parametrize(
    ("stage", "code", "kind"),
    [
        ("connect", None, "transient"),  # refused, reset, timeout
        ("connect", 421, "transient"),
        ("connect", 554, "transient"),  # the server, not the message
        ("auth", 535, "transient"),  # our credentials: every action alike, retried until fixed
        ("mail", 451, "transient"),
        ("mail", 550, "transient"),
        ("rcpt", None, "transient"),
        ("rcpt", 450, "transient"),
        ("rcpt", 550, "permanent"),
        ("rcpt", 553, "permanent"),
        ("data", 554, "permanent"),
        ("data", None, "transient"),  # the body was still on its way: no message yet
        ("data_end", 452, "transient"),
        ("data_end", 552, "permanent"),
        ("data_end", None, "in_doubt"),  # the marker went out, no reply: maybe delivered
    ],
)
def test_classify(stage: str, code: int | None, kind: str) -> None:
    assert classify(stage, code) == kind  # type: ignore[arg-type]


def test_backoff_doubles_is_capped_and_jittered_within_half_to_full() -> None:
    delays = [backoff_seconds(n, initial=1.0, maximum=60.0, jitter=1.0) for n in range(1, 10)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff_seconds(3, initial=1.0, maximum=60.0, jitter=0.0) == 2.0
    assert backoff_seconds(3, initial=1.0, maximum=60.0, jitter=0.5) == 3.0
    assert backoff_seconds(10_000, initial=1.0, maximum=300.0, jitter=1.0) == 300.0  # no overflow
    with pytest.raises(ValueError):
        backoff_seconds(0, initial=1.0, maximum=60.0, jitter=0.5)


def test_replies_lose_addresses() -> None:
    assert redact("550 5.1.1 <ann.lee+x@example.com>: Recipient address rejected") == "550 5.1.1 <<address>>: Recipient address rejected"
    assert redact("250 OK queued as 12345") == "250 OK queued as 12345"
