"""Customer id -> email address. Events carry no addresses, so the sender looks them up.

Sources, first match wins: a CSV file (``customer_id,email[,name]``, header required) and,
for demos, a ``recipient_pattern`` such as ``"{customer_id}@example.com"``. Addresses are
customer data: error messages name the file, line and field, never the address itself.
"""

from __future__ import annotations

import csv
import re
import string
from dataclasses import dataclass
from pathlib import Path

from stream.clients import ConfigError

# Deliberately loose (the SMTP server has the last word), but strict about what could
# break a header or an envelope: whitespace, separators, angle brackets, quotes.
_ADDRESS = re.compile(r"[^@\s<>,;\"()\[\]\\]+@[^@\s<>,;\"()\[\]\\]+")


def valid_address(address: str) -> bool:
    return bool(_ADDRESS.fullmatch(address)) and len(address) <= 254


@dataclass(frozen=True)
class Contact:
    email: str
    name: str | None = None


@dataclass(frozen=True)
class Contacts:
    by_customer: dict[str, Contact]
    pattern: str | None = None

    def lookup(self, customer_id: str) -> Contact | None:
        contact = self.by_customer.get(customer_id)
        if contact is not None:
            return contact
        if self.pattern is not None:
            address = self.pattern.format(customer_id=customer_id)
            # A customer id with spaces or '@' makes no usable address: no contact.
            if valid_address(address):
                return Contact(address)
        return None

    def __len__(self) -> int:
        return len(self.by_customer)


def check_pattern(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable recipient pattern, or None."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}
    except ValueError as error:
        return f"not a format string: {error}"
    if fields != {"customer_id"}:
        return "must contain {customer_id} and no other field"
    if not valid_address(pattern.format(customer_id="c1")):
        return "does not make an email address"
    return None


def load_contacts(contacts_file: str | Path | None, pattern: str | None) -> Contacts:
    """The contacts; ConfigError names the file, line, field and reason of any problem."""
    if pattern is not None:
        problem = check_pattern(pattern)
        if problem:
            raise ConfigError(f"recipient_pattern: {problem}")
    if contacts_file is None:
        return Contacts({}, pattern)
    path = Path(contacts_file)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the contacts file: {error.strerror or error}") from None
    by_customer: dict[str, Contact] = {}
    with handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        missing = [name for name in ("customer_id", "email") if name not in header]
        if missing:
            raise ConfigError(f"{path}:1: header: needs the columns customer_id and email (missing {', '.join(missing)})")
        reader.fieldnames = header
        try:
            for row in reader:
                line = reader.line_num
                customer_id = (row.get("customer_id") or "").strip()
                email = (row.get("email") or "").strip()
                name = (row.get("name") or "").strip() or None
                if not customer_id:
                    raise ConfigError(f"{path}:{line}: customer_id: empty")
                if not valid_address(email):
                    raise ConfigError(f"{path}:{line}: email: not an email address")
                if name is not None and ("\r" in name or "\n" in name):
                    raise ConfigError(f"{path}:{line}: name: contains a line break")
                if customer_id in by_customer:
                    raise ConfigError(f"{path}:{line}: customer_id: listed twice")
                by_customer[customer_id] = Contact(email, name)
        except csv.Error as error:
            raise ConfigError(f"{path}:{reader.line_num}: not valid CSV: {error}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text") from None
    return Contacts(by_customer, pattern)
