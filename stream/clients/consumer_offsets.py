"""Decoding the records of Kafka's ``__consumer_offsets`` topic, as Burrow does.

Pure: bytes in, values out, no client. ``stream/clients/lag.py`` reads the topic.

A group's commits all go to one partition of ``__consumer_offsets``: the one its
coordinator owns, ``abs(Java String.hashCode(group)) % partitions`` (Kafka's
``GroupMetadataManager.partitionFor``; Kafka's ``Utils.abs`` maps Integer.MIN_VALUE to 0).

Record keys start with an int16 version: 0 and 1 are an offset commit
(group, topic, partition); 2 is group metadata (membership), and newer versions belong
to the KIP-848 coordinator: neither is an offset commit, so :func:`decode_key` returns
None for them. Offset commit values (int16 version first):

- v0: offset int64, metadata string, commit_timestamp int64
- v1: offset int64, metadata string, commit_timestamp int64, expire_timestamp int64
- v2: offset int64, metadata string, commit_timestamp int64
- v3: offset int64, leader_epoch int32, metadata string, commit_timestamp int64
- v4: as v3 in the flexible encoding (compact string, tagged fields at the end)

A null value is a tombstone: the offset was deleted (expired, or the group removed).
Strings are int16-length-prefixed UTF-8 (compact: unsigned varint length + 1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass


class CommitRecordError(ValueError):
    """The bytes are not a well-formed record of a known version."""


@dataclass(frozen=True)
class OffsetCommitKey:
    group: str
    topic: str
    partition: int


@dataclass(frozen=True)
class OffsetCommitValue:
    offset: int
    metadata: str
    commit_timestamp_ms: int
    leader_epoch: int | None = None
    expire_timestamp_ms: int | None = None


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode()``: over UTF-16 code units, in signed 32-bit arithmetic."""
    units = text.encode("utf-16-be")
    value = 0
    for index in range(0, len(units), 2):
        value = (31 * value + ((units[index] << 8) | units[index + 1])) & 0xFFFFFFFF
    return value - (1 << 32) if value >= (1 << 31) else value


def coordinator_partition(group: str, partitions: int) -> int:
    """The ``__consumer_offsets`` partition holding ``group``'s commits."""
    code = java_string_hash(group)
    return (0 if code == -(1 << 31) else abs(code)) % partitions


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise CommitRecordError(f"record truncated at byte {self.pos}")
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        length = self.take(">h")
        if length < 0:
            return ""
        return self._text(length)

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            byte = self.take(">B")
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 28:
                raise CommitRecordError("varint too long")

    def compact_string(self) -> str:
        length = self.uvarint() - 1
        if length < 0:
            return ""
        return self._text(length)

    def _text(self, length: int) -> str:
        if self.pos + length > len(self.data):
            raise CommitRecordError(f"string truncated at byte {self.pos}")
        raw = self.data[self.pos:self.pos + length]
        self.pos += length
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise CommitRecordError(f"string is not UTF-8: {error}") from None


def decode_key(data: bytes) -> OffsetCommitKey | None:
    """An offset commit's key, or None for the topic's other records (group metadata, ...)."""
    reader = _Reader(data)
    version = reader.take(">h")
    if version not in (0, 1):
        return None
    return OffsetCommitKey(group=reader.string(), topic=reader.string(), partition=reader.take(">i"))


def decode_value(data: bytes | None) -> OffsetCommitValue | None:
    """An offset commit's value; None for a tombstone (the offset was deleted)."""
    if data is None:
        return None
    reader = _Reader(data)
    version = reader.take(">h")
    if version in (0, 2):
        return OffsetCommitValue(offset=reader.take(">q"), metadata=reader.string(), commit_timestamp_ms=reader.take(">q"))
    if version == 1:
        return OffsetCommitValue(
            offset=reader.take(">q"), metadata=reader.string(), commit_timestamp_ms=reader.take(">q"),
            expire_timestamp_ms=reader.take(">q"),
        )
    if version in (3, 4):
        offset = reader.take(">q")
        epoch = reader.take(">i")
        metadata = reader.string() if version == 3 else reader.compact_string()
        return OffsetCommitValue(
            offset=offset, metadata=metadata, commit_timestamp_ms=reader.take(">q"),
            leader_epoch=None if epoch < 0 else epoch,
        )
    raise CommitRecordError(f"unknown offset commit value version {version}")
