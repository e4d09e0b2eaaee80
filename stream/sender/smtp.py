"""Delivering one message over SMTP with the standard library's smtplib.

Why smtplib and not aiosmtplib: the sender's loop is synchronous (kafka-python, whose
heartbeats run in their own thread), sends one message at a time so that the ledger
can bracket each transaction, and smtplib is the stdlib's long-tested client: one
dependency fewer for the same behaviour. Each command is bounded by ``timeout_seconds``.

The transaction is spelled out (MAIL, RCPT, DATA, body, marker) instead of calling
``sendmail`` so that the caller's ``before_end_of_data`` hook runs at the one point that
matters: after the body, right before the end-of-data marker that makes the server
accept the message (see ``retry.py``). Every failure becomes a ``DeliveryFailed`` naming
the stage, the reply code (or None) and text, classified by ``retry.classify``.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
import sys
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from typing import Callable, Literal, Protocol

from stream.sender.redact import redact
from stream.sender.retry import Failure, Stage, classify

Security = Literal["none", "starttls", "tls"]
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


class DeliveryFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(f"{failure.kind} failure at {failure.stage}: {failure.code} {failure.reply}")
        self.failure = failure


def _failed(stage: Stage, code: int | None, reply: bytes | str | BaseException) -> DeliveryFailed:
    if isinstance(reply, BaseException):
        text = f"{type(reply).__name__}: {reply}"
    else:
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    # Replies often echo the recipient's address: never keep it (logs, ledger, DLQ).
    return DeliveryFailed(Failure(classify(stage, code), stage, code, redact(" ".join(text.split()))[:500]))


class Transport(Protocol):
    def send(self, message: EmailMessage, *, sender: str, recipient: str, before_end_of_data: Callable[[], None]) -> tuple[int, str]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: Security
    username: str | None
    password: str | None
    timeout_seconds: float
    local_hostname: str | None = None
    ssl_context: ssl.SSLContext | None = None


def dot_stuffed(message: EmailMessage) -> bytes:
    """The message's bytes as DATA sends them: CRLF lines, leading dots doubled, ending in
    CRLF, without the end-of-data marker."""
    data = _LEADING_DOT.sub(b"..", message.as_bytes(policy=SMTP_POLICY))
    return data if data.endswith(b"\r\n") else data + b"\r\n"


class SmtpTransport:
    """One connection, kept open between messages and reopened after a failure."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        context = config.ssl_context or ssl.create_default_context()
        try:
            if config.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(config.host, config.port, local_hostname=config.local_hostname,
                                                      timeout=config.timeout_seconds, context=context)
            else:
                smtp = smtplib.SMTP(config.host, config.port, local_hostname=config.local_hostname, timeout=config.timeout_seconds)
        except smtplib.SMTPConnectError as error:
            raise _failed("connect", error.smtp_code, error.smtp_error) from None
        except OSError as error:
            raise _failed("connect", None, error) from None
        try:
            # The body and the end-of-data marker go out as two writes (the ledger commits
            # between them); with Nagle's algorithm the marker would wait for the server's
            # delayed ACK of the body, some 40 ms per message.
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._hello(smtp, "helo")
            if config.security == "starttls":
                try:
                    smtp.starttls(context=context)
                except smtplib.SMTPResponseException as error:
                    raise _failed("starttls", error.smtp_code, error.smtp_error) from None
                except smtplib.SMTPNotSupportedError as error:
                    raise _failed("starttls", None, error) from None
                self._hello(smtp, "starttls")
            if config.username:
                try:
                    smtp.login(config.username, config.password or "")
                except smtplib.SMTPResponseException as error:
                    raise _failed("auth", error.smtp_code, error.smtp_error) from None
                except smtplib.SMTPException as error:  # no AUTH offered, no common mechanism
                    raise _failed("auth", None, error) from None
        except DeliveryFailed:
            _close_quietly(smtp)
            raise
        except OSError as error:
            _close_quietly(smtp)
            raise _failed("helo", None, error) from None
        return smtp

    @staticmethod
    def _hello(smtp: smtplib.SMTP, stage: Stage) -> None:
        code, reply = smtp.ehlo()
        if code != 250:
            code, reply = smtp.helo()
            if code != 250:
                raise _failed(stage, code, reply)

    def send(self, message: EmailMessage, *, sender: str, recipient: str, before_end_of_data: Callable[[], None]) -> tuple[int, str]:
        """Deliver ``message``; returns the 250 reply, raises DeliveryFailed otherwise.
        ``before_end_of_data`` runs after the body is sent and before the marker; if it
        raises, the marker is never sent and the transaction is abandoned."""
        data = dot_stuffed(message)
        smtp = self._start_transaction(sender)
        stage: Stage = "rcpt"
        try:
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                raise _failed("rcpt", code, reply)
            stage = "data"
            code, reply = smtp.docmd("DATA")
            if code != 354:
                raise _failed("data", code, reply)
            smtp.send(data)
            before_end_of_data()
            stage = "data_end"
            smtp.send(b".\r\n")
            code, reply = smtp.getreply()
            if not 200 <= code < 300:
                raise _failed("data_end", code, reply)
            return code, reply.decode("utf-8", "replace")
        except DeliveryFailed:
            self._reset()
            raise
        except OSError as error:  # includes SMTPServerDisconnected and timeouts
            self._drop()
            raise _failed(stage, None, error) from None
        except BaseException:
            self._drop()
            raise

    def _start_transaction(self, sender: str) -> smtplib.SMTP:
        """MAIL FROM on the open connection, or on a fresh one when the server closed the
        idle one meanwhile (safe to redo: nothing of this message was sent yet)."""
        for reused in (self._smtp is not None, False):
            if self._smtp is None:
                self._smtp = self._connect()
            try:
                code, reply = self._smtp.mail(sender)
            except OSError as error:
                self._drop()
                if reused:
                    continue
                raise _failed("mail", None, error) from None
            if code == 421 and reused:  # "closing connection": the idle connection timed out
                self._drop()
                continue
            if code != 250:
                self._reset()
                raise _failed("mail", code, reply)
            return self._smtp
        raise AssertionError("unreachable")  # pragma: no cover

    def _reset(self) -> None:
        """Abandon the transaction but keep the connection; drop it if that fails too."""
        if self._smtp is None:
            return
        try:
            self._smtp.rset()
        except OSError:
            self._drop()

    def _drop(self) -> None:
        if self._smtp is not None:
            _close_quietly(self._smtp)
            self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except OSError:
                pass
            self._drop()


def _close_quietly(smtp: smtplib.SMTP) -> None:
    try:
        smtp.close()
    except OSError:
        pass


class PrintTransport:
    """Demo mode (``--print``): writes each message to stdout instead of sending it."""

    def __init__(self, out: Callable[[str], None] | None = None) -> None:
        self.out = out or (lambda text: (sys.stdout.write(text), sys.stdout.flush()))
        self.count = 0

    def send(self, message: EmailMessage, *, sender: str, recipient: str, before_end_of_data: Callable[[], None]) -> tuple[int, str]:
        before_end_of_data()
        self.count += 1
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        html = " (+ HTML part)" if message.get_body(("html",)) is not None and body is not message.get_body(("html",)) else ""
        header = "\n".join(f"{name}: {message[name]}" for name in ("Message-ID", "From", "To", "Subject"))
        self.out(f"──── email {self.count}{html} ────\n{header}\n\n{text.rstrip()}\n\n")
        return 250, "printed"

    def close(self) -> None:
        pass
