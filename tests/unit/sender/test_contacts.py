from pathlib import Path

import pytest

from stream.clients import ConfigError
from stream.sender.contacts import Contact, load_contacts


def test_csv_contacts_with_and_without_names(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("customer_id,email,name\ncust-1,ann@example.com,Ann Lee\ncust-2, bo@example.org ,\n")
    contacts = load_contacts(path, None)
    assert contacts.lookup("cust-1") == Contact("ann@example.com", "Ann Lee")
    assert contacts.lookup("cust-2") == Contact("bo@example.org", None)
    assert contacts.lookup("cust-3") is None and len(contacts) == 2


def test_the_file_wins_over_the_pattern_and_odd_ids_make_no_address(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text("customer_id,email\ncust-1,ann@example.com\n")
    contacts = load_contacts(path, "{customer_id}@example.net")
    assert contacts.lookup("cust-1") == Contact("ann@example.com")
    assert contacts.lookup("cust-9") == Contact("cust-9@example.net")
    assert contacts.lookup("two words") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,mail\n1,a@b.c\n", r":1: header: needs the columns customer_id and email \(missing customer_id, email\)"),
        ("customer_id,email\ncust-1,ann.example.com\n", r":2: email: not an email address$"),
        ("customer_id,email\ncust-1,a@b.c\ncust-1,d@e.f\n", r":3: customer_id: listed twice"),
        ("customer_id,email\n,a@b.c\n", r":2: customer_id: empty"),
    ],
)
def test_bad_contacts_name_file_line_and_field_but_never_the_address(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as raised:
        load_contacts(path, None)
    assert str(raised.value).startswith(str(path)) and "example.com" not in str(raised.value)


@pytest.mark.parametrize("pattern", ["{id}@example.com", "everyone@example.com", "{customer_id}", "{customer_id}@{domain}"])
def test_bad_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ConfigError, match="recipient_pattern: "):
        load_contacts(None, pattern)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the contacts file"):
        load_contacts(tmp_path / "nope.csv", None)
