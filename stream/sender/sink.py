"""A local SMTP sink on aiosmtpd: accepts every message and hands it to a callback.

``segments smtp-sink`` prints what arrives (for ``make demo`` and for trying templates);
the tests use the same server with a slowed reply (``delay_seconds``: the crash test's
SIGKILL lands mid-transaction) and refused recipients (``reject``: a 550).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Callable

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    received_at: float  # wall clock, when the end of data arrived

    def message(self) -> EmailMessage:
        return message_from_bytes(self.content, policy=policy.default)  # type: ignore[return-value]

    @property
    def message_id(self) -> str | None:
        return self.message()["Message-ID"]


@dataclass
class SinkHandler:
    on_message: Callable[[ReceivedMail], None] | None = None
    # Seconds between receiving the end of data and replying 250.
    delay_seconds: float = 0.0
    # recipient -> (code, text) to refuse it with, or None to accept.
    reject: Callable[[str], tuple[int, str] | None] | None = None
    messages: list[ReceivedMail] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:  # noqa: N802 (aiosmtpd's hook name)
        refusal = self.reject(address) if self.reject else None
        if refusal is not None:
            return f"{refusal[0]} {refusal[1]}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        mail = ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(envelope.content), time.time())
        with self._lock:
            self.messages.append(mail)
        if self.on_message is not None:
            self.on_message(mail)
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        return "250 Message accepted for delivery"

    def received(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self.messages)


class SmtpSink:
    """The handler behind an aiosmtpd server in a background thread; ``stop`` and
    ``start`` again on the same port (an outage, in the tests)."""

    def __init__(self, handler: SinkHandler, host: str = "127.0.0.1", port: int = 2525) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self._controller: Controller | None = None

    def start(self) -> "SmtpSink":
        self._controller = Controller(self.handler, hostname=self.host, port=self.port, ready_timeout=10)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
