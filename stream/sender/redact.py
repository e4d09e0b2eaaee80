"""Keeping customers' addresses out of logs and dead letters. Pure.

SMTP servers often echo the recipient in their replies ("550 5.1.1 <ann@example.com>:
Recipient address rejected"); the sender stores and logs reply texts, so every reply
goes through :func:`redact` first.
"""

from __future__ import annotations

import re

_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"']+@[^\s<>()\[\],;:\"']+")
PLACEHOLDER = "<address>"


def redact(text: str) -> str:
    """``text`` with anything shaped like an email address replaced by ``<address>``."""
    return _ADDRESS.sub(PLACEHOLDER, text)
