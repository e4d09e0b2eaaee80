"""encode_dead_letter produces records valid against dead_letter.schema.json."""

from __future__ import annotations

import base64

import orjson
import pytest

from stream.events import REASONS, Rejection, decode_event, encode_dead_letter, validator

RAW_CASES = [
    b"",
    b"\xef\xbb\xbf{}",
    b"\xff\xfe garbage",
    b'{"type":"order","total":-1}',
    b'{"type":"refund"}',
    b"x" * 300_000,
]


@pytest.mark.parametrize("raw", RAW_CASES)
def test_encoded_rejections_are_valid(raw: bytes) -> None:
    rejection = decode_event(raw)
    assert isinstance(rejection, Rejection)
    out = encode_dead_letter(
        raw,
        rejection,
        topic="events",
        partition=2,
        offset=1234,
        timestamp_ms=1709296200000,
        key=b"cust-42",
        failed_at_ms=1709296200123,
        worker="worker-1",
    )
    record = orjson.loads(out)
    assert list(validator("dead_letter").iter_errors(record)) == []
    assert record["reason"] == rejection.reason
    assert record["detail"] == rejection.detail
    assert base64.b64decode(record["original_b64"], validate=True) == raw
    assert record["original_size"] == len(raw)
    assert "original_truncated" not in record
    assert record["source"] == {
        "topic": "events",
        "partition": 2,
        "offset": 1234,
        "timestamp_ms": 1709296200000,
        "key_b64": base64.b64encode(b"cust-42").decode(),
    }
    assert record["failed_at"] == "2024-03-01T12:30:00.123Z"
    assert record["worker"] == "worker-1"


@pytest.mark.parametrize("reason", REASONS)
def test_every_reason_encodes(reason: str) -> None:
    out = encode_dead_letter(
        b"{}", Rejection(reason, "why"), topic="t", partition=0, offset=0,
        timestamp_ms=None, key=None, failed_at_ms=0,
    )
    record = orjson.loads(out)
    assert list(validator("dead_letter").iter_errors(record)) == []
    assert record["source"]["key_b64"] is None
    assert record["source"]["timestamp_ms"] is None
    assert record["failed_at"] == "1970-01-01T00:00:00.000Z"
    assert "worker" not in record


def test_truncation() -> None:
    raw = b"y" * 1000
    out = encode_dead_letter(
        raw, Rejection("oversized", "big"), topic="t", partition=0, offset=9,
        timestamp_ms=1, key=b"", failed_at_ms=1, max_original_bytes=100,
    )
    record = orjson.loads(out)
    assert list(validator("dead_letter").iter_errors(record)) == []
    assert base64.b64decode(record["original_b64"]) == raw[:100]
    assert record["original_truncated"] is True
    assert record["original_size"] == 1000
    assert record["source"]["key_b64"] == ""


def test_unknown_reason_refused() -> None:
    with pytest.raises(ValueError):
        encode_dead_letter(
            b"", Rejection("bad_vibes", ""), topic="t", partition=0, offset=0,
            timestamp_ms=None, key=None, failed_at_ms=0,
        )
