"""The suppression list file: plain or CSV ids, comments, errors with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.playbooks import SuppressionListError, load_suppression


def write(tmp_path: Path, data: bytes | str, name: str = "suppressed.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_plain_list_with_comments_and_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "# unsubscribed\ncust-1\n\n  cust-2  \n   # indented comment\ncust-1\ncust 3\n")
    assert load_suppression(path) == frozenset({"cust-1", "cust-2", "cust 3"})


def test_csv_export_with_header_bom_and_crlf(tmp_path: Path) -> None:
    data = b'\xef\xbb\xbfcustomer_id,reason,since\r\ncust-1,unsubscribed,2024-01-01\r\n"cust,2",bounced,2024-02-01\r\n'
    assert load_suppression(write(tmp_path, data, "list.csv")) == frozenset({"cust-1", "cust,2"})


def test_customer_id_is_a_header_only_on_the_first_row(tmp_path: Path) -> None:
    assert load_suppression(write(tmp_path, "cust-1\ncustomer_id\n")) == frozenset({"cust-1", "customer_id"})


def test_empty_file_suppresses_nobody(tmp_path: Path) -> None:
    assert load_suppression(write(tmp_path, "")) == frozenset()
    assert load_suppression(write(tmp_path, "# nobody yet\n")) == frozenset()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"cust-1\n,unsubscribed\n", "line 2: empty customer id (the id is the first column)"),
        (b"cust-1\ncust-2\n" + b"x" * 257 + b"\n", "line 3: customer id longer than 256 characters (257)"),
        (b"cust-1\n\xff\xfe\n", "line 2: not UTF-8 text"),
        (b"cust-\x01\n", "line 1: control character in customer id"),
        (b'"cust-1\n', "line 1: not a CSV row"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, data: bytes, message: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(SuppressionListError) as exc:
        load_suppression(path)
    assert str(exc.value).startswith(f"{path}: {message}")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(SuppressionListError, match="nope.txt: cannot read suppression list"):
        load_suppression(tmp_path / "nope.txt")
