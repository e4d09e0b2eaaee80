"""Pins on third-party code the project patches or wraps: a test hashes the source it
was written against, so an upgrade that changes that source fails the suite instead
of silently running a patch that no longer fits."""

from __future__ import annotations

import hashlib
import inspect
from types import ModuleType


def method_source_sha256(module: ModuleType, signature: str) -> str:
    """sha256 of a method's source as its module's file has it (the class attribute may
    be patched already): from ``signature``, the start of its ``def`` line, to the next
    plain ``def`` of the same indentation."""
    source = inspect.getsource(module)
    start = source.index(signature)
    end = source.index("\n    def ", start + 1)
    return hashlib.sha256(source[start:end].encode()).hexdigest()
