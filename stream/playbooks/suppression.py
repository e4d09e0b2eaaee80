"""The suppression list file: customers who must get no marketing (unsubscribed,
do-not-contact).

Format: one customer id per line, as plain text or CSV (the first column is the id,
further columns such as a reason or a date are ignored, so an export from an ESP or a
CRM can be used as is). Blank lines and lines starting with ``#`` are skipped; a first
row whose id is ``customer_id`` is a header. Ids follow the event schemas: 1 to 256
characters, no control characters.

Why errors name the file and line: the list usually comes from another system, and a
broken export (a wrong delimiter, a binary file) must stop start-up where it can be
fixed instead of silently suppressing nobody.
"""

from __future__ import annotations

import csv
from pathlib import Path

MAX_ID_LENGTH = 256  # customer_id's maxLength in schemas/*.schema.json


class SuppressionListError(ValueError):
    """An unreadable or invalid suppression list: the message names the file and line."""


def load_suppression(path: str | Path) -> frozenset[str]:
    """The customer ids listed in ``path`` (see the module docstring for the format)."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise SuppressionListError(f"{name}: cannot read suppression list: {exc.strerror or exc}") from None
    return parse_suppression(raw, name)


def parse_suppression(data: bytes, name: str = "suppression.txt") -> frozenset[str]:
    """Customer ids from the bytes of a suppression list; ``name`` is used in errors."""
    if data.startswith(b"\xef\xbb\xbf"):  # spreadsheets write a UTF-8 byte order mark
        data = data[3:]
    ids: set[str] = set()
    first_row = True
    for number, raw_line in enumerate(data.splitlines(), start=1):
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SuppressionListError(f"{name}: line {number}: not UTF-8 text ({exc.reason})") from None
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            fields = next(csv.reader([line], strict=True))
        except csv.Error as exc:
            raise SuppressionListError(f"{name}: line {number}: not a CSV row ({exc})") from None
        customer_id = fields[0].strip() if fields else ""
        if first_row and customer_id.lower() == "customer_id":
            first_row = False
            continue
        first_row = False
        if not customer_id:
            raise SuppressionListError(f"{name}: line {number}: empty customer id (the id is the first column)")
        if len(customer_id) > MAX_ID_LENGTH:
            raise SuppressionListError(
                f"{name}: line {number}: customer id longer than {MAX_ID_LENGTH} characters ({len(customer_id)})"
            )
        if any(ord(c) < 32 or ord(c) == 127 for c in customer_id):
            raise SuppressionListError(f"{name}: line {number}: control character in customer id {customer_id!r}")
        ids.add(customer_id)
    return frozenset(ids)
