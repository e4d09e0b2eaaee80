"""The SMTP transport against a real SMTP server (aiosmtpd) on loopback: replies become
the right failure kinds, and the ledger hook runs exactly before the end-of-data marker."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from stream.broker.local import free_port
from stream.sender.sink import SinkHandler, SmtpSink
from stream.sender.smtp import DeliveryFailed, SmtpConfig, SmtpTransport


def _message(n: int) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"test {n}"
    message["From"] = "shop@example.com"
    message["To"] = "ann@example.com"
    message["Message-ID"] = f"<m{n}@example.com>"
    message["Date"] = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    message.set_content(".leading dot\n..two\nend\n")
    return message


def _transport(port: int, timeout: float = 10.0) -> SmtpTransport:
    return SmtpTransport(SmtpConfig("127.0.0.1", port, "none", None, None, timeout))


def test_delivery_reuses_the_connection_and_runs_the_hook_before_the_marker() -> None:
    handler = SinkHandler()
    port = free_port()
    calls: list[int] = []
    with SmtpSink(handler, port=port):
        transport = _transport(port)
        for n in range(3):
            code, _ = transport.send(_message(n), sender="shop@example.com", recipient="ann@example.com",
                                     before_end_of_data=lambda: calls.append(len(handler.received())))
            assert code == 250
        transport.close()
    # The hook ran once per message, each time before the server had that message.
    assert calls == [0, 1, 2]
    received = handler.received()
    assert [mail.message_id for mail in received] == ["<m0@example.com>", "<m1@example.com>", "<m2@example.com>"]
    assert received[0].message().get_content().replace("\r\n", "\n") == ".leading dot\n..two\nend\n"  # dot-stuffing undone by the server


def test_a_failing_hook_means_the_server_never_gets_the_message() -> None:
    handler = SinkHandler()
    port = free_port()
    with SmtpSink(handler, port=port):
        transport = _transport(port)

        def fail() -> None:
            raise RuntimeError("disk full")

        with pytest.raises(RuntimeError):
            transport.send(_message(1), sender="shop@example.com", recipient="ann@example.com", before_end_of_data=fail)
        code, _ = transport.send(_message(2), sender="shop@example.com", recipient="ann@example.com", before_end_of_data=lambda: None)
        transport.close()
    assert code == 250 and [mail.message_id for mail in handler.received()] == ["<m2@example.com>"]


@pytest.mark.parametrize(
    ("reply", "kind"),
    [((550, "5.1.1 Mailbox <ann@example.com> unavailable"), "permanent"), ((451, "4.3.0 Try again later"), "transient")],
)
def test_recipient_refusals_are_classified_and_addresses_redacted(reply: tuple[int, str], kind: str) -> None:
    port = free_port()
    with SmtpSink(SinkHandler(reject=lambda address: reply), port=port):
        transport = _transport(port)
        with pytest.raises(DeliveryFailed) as raised:
            transport.send(_message(1), sender="shop@example.com", recipient="ann@example.com", before_end_of_data=lambda: None)
        transport.close()
    failure = raised.value.failure
    assert (failure.kind, failure.stage, failure.code) == (kind, "rcpt", reply[0])
    assert "ann@example.com" not in failure.reply


def test_connection_refused_is_transient() -> None:
    with pytest.raises(DeliveryFailed) as raised:
        _transport(free_port()).send(_message(1), sender="shop@example.com", recipient="ann@example.com", before_end_of_data=lambda: None)
    assert (raised.value.failure.kind, raised.value.failure.stage, raised.value.failure.code) == ("transient", "connect", None)


def test_no_reply_after_the_marker_is_in_doubt() -> None:
    handler = SinkHandler(delay_seconds=3.0)  # replies long after the client gave up
    port = free_port()
    with SmtpSink(handler, port=port):
        transport = _transport(port, timeout=0.5)
        with pytest.raises(DeliveryFailed) as raised:
            transport.send(_message(1), sender="shop@example.com", recipient="ann@example.com", before_end_of_data=lambda: None)
        transport.close()
        assert [mail.message_id for mail in handler.received()] == ["<m1@example.com>"]
    assert (raised.value.failure.kind, raised.value.failure.stage) == ("in_doubt", "data_end")
