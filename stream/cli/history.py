"""Reading event histories (JSON lines) and instants given on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import click

from stream.events import parse_instant


def iter_lines(paths: tuple[str, ...]) -> Iterator[bytes]:
    """Non-blank lines of the files, in order, as the original bytes."""
    for path in paths:
        with Path(path).open("rb") as handle:
            for line in handle:
                line = line.rstrip(b"\r\n")
                if line.strip():
                    yield line


class InstantType(click.ParamType):
    """An RFC 3339 instant, or a date (its 00:00 UTC)."""

    name = "INSTANT"

    def convert(self, value, param, ctx):  # type: ignore[override]
        if isinstance(value, int):
            return value
        text = value if "T" in value else f"{value}T00:00:00Z"
        instant = parse_instant(text)
        if instant is None:
            self.fail(f"{value!r} is not an RFC 3339 instant with an offset (e.g. 1998-07-01T00:00:00Z) or a date", param, ctx)
        return instant


INSTANT = InstantType()
