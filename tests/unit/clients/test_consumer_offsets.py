"""Decoding __consumer_offsets records (stream/clients/consumer_offsets.py)."""

from __future__ import annotations

import struct

import pytest

from stream.clients.consumer_offsets import (
    CommitRecordError, OffsetCommitKey, OffsetCommitValue, coordinator_partition, decode_key, decode_value,
    java_string_hash,
)


def string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def test_java_string_hash_matches_java() -> None:
    # Values of String.hashCode() from a JVM.
    assert java_string_hash("") == 0
    assert java_string_hash("a") == 97
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("Hello World") == -862545276
    assert java_string_hash("\U0001F600") == 1772899  # one code point, two UTF-16 units


def test_coordinator_partition_is_abs_hash_mod_partitions() -> None:
    assert coordinator_partition("hello", 50) == 99162322 % 50
    assert coordinator_partition("Hello World", 50) == 862545276 % 50
    # hashCode Integer.MIN_VALUE: Kafka's Utils.abs maps it to 0 (Math.abs would stay negative).
    assert java_string_hash("polygenelubricants") == -(2**31)
    assert coordinator_partition("polygenelubricants", 50) == 0


def test_a_record_written_by_kafka_3_9() -> None:
    # Group probe-g1 committed offset 10 of probe-t1[0] (key v1, value v3), read back from a broker.
    key = bytes.fromhex("0001000870726f62652d6731000870726f62652d743100000000")
    value = bytes.fromhex("0003000000000000000a000000000000000001a2181fed21")
    assert decode_key(key) == OffsetCommitKey("probe-g1", "probe-t1", 0)
    assert decode_value(value) == OffsetCommitValue(offset=10, metadata="", commit_timestamp_ms=1795701075233, leader_epoch=0)


@pytest.mark.parametrize("version", [0, 1])
def test_offset_commit_keys_v0_and_v1(version: int) -> None:
    key = struct.pack(">h", version) + string("grp") + string("orders") + struct.pack(">i", 7)
    assert decode_key(key) == OffsetCommitKey("grp", "orders", 7)


@pytest.mark.parametrize("version", [2, 3, 1000])
def test_group_metadata_and_newer_keys_are_not_offset_commits(version: int) -> None:
    assert decode_key(struct.pack(">h", version) + string("grp")) is None


def test_value_versions_0_to_4() -> None:
    v0 = struct.pack(">hq", 0, 42) + string("meta") + struct.pack(">q", 1_700_000_000_000)
    assert decode_value(v0) == OffsetCommitValue(42, "meta", 1_700_000_000_000)
    v1 = struct.pack(">hq", 1, 42) + string("") + struct.pack(">qq", 1_700_000_000_000, 1_700_086_400_000)
    assert decode_value(v1) == OffsetCommitValue(42, "", 1_700_000_000_000, expire_timestamp_ms=1_700_086_400_000)
    v2 = struct.pack(">hq", 2, 43) + string("m") + struct.pack(">q", 5)
    assert decode_value(v2) == OffsetCommitValue(43, "m", 5)
    v3 = struct.pack(">hqi", 3, 44, -1) + string("m") + struct.pack(">q", 6)
    assert decode_value(v3) == OffsetCommitValue(44, "m", 6, leader_epoch=None)
    # Flexible: compact string (length + 1 as an unsigned varint), then tagged fields.
    v4 = struct.pack(">hqi", 4, 45, 3) + bytes([len("meta") + 1]) + b"meta" + struct.pack(">q", 7) + b"\x00"
    assert decode_value(v4) == OffsetCommitValue(45, "meta", 7, leader_epoch=3)


def test_a_null_value_is_a_tombstone() -> None:
    assert decode_value(None) is None


def test_truncated_or_unknown_records_raise() -> None:
    with pytest.raises(CommitRecordError):
        decode_value(struct.pack(">hq", 3, 44))
    with pytest.raises(CommitRecordError):
        decode_value(struct.pack(">hq", 9, 44))
    with pytest.raises(CommitRecordError):
        decode_key(struct.pack(">h", 1) + struct.pack(">h", 10) + b"short")
