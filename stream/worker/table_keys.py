"""How the worker's tables and topics lay out their keys, and which partition holds a
customer: what the worker, `segments snapshot` and `segments profile` must agree on.

Why a module of its own: the CLI commands that read the tables' changelogs need these
few functions, and the modules that hold the tables import faust and the worker's
RocksDB code, a second of imports a command reading a topic has no use for.
"""

from __future__ import annotations

import functools
import struct

from kafka.partitioner.default import murmur2

# The worker's tables, each with a changelog topic ``<app id>-<name>-changelog``.
WORKER_TABLES = ("customers", "timers", "clocks", "recent_changes")

DUE = struct.Struct(">q")  # the timer keys' prefix: the due instant, big-endian, so keys sort by it
_HISTORY_ID_LENGTH = struct.Struct(">H")  # customer ids are at most 256 characters
_HISTORY_SEQ = struct.Struct(">Q")


@functools.lru_cache(maxsize=1 << 16)
def key_hash(key: bytes) -> int:
    """Kafka's default partitioner's hash of a record key (murmur2, positive), as the
    Java client and aiokafka compute it. Memoised: murmur2 is pure Python, and every
    change and profile of a customer hashes the same key again."""
    return murmur2(key) & 0x7FFFFFFF


def partition_of(customer_id: str, partitions: int) -> int:
    """The partition holding a customer: the tables are partitioned like segments-events,
    by Kafka's default (murmur2) partitioner on the customer id."""
    return key_hash(customer_id.encode()) % partitions


def timer_key(due: int, customer_id: str) -> bytes:
    return DUE.pack(due) + customer_id.encode()


def split_timer_key(key: bytes) -> tuple[int, str]:
    return DUE.unpack_from(key)[0], key[DUE.size :].decode()


def clock_key(partition: int) -> bytes:
    return f"clock:{partition}".encode()


def offset_key(partition: int) -> bytes:
    return f"offset:{partition}".encode()


def rules_key(partition: int) -> bytes:
    return f"rules:{partition}".encode()


def census_key(partition: int) -> bytes:
    return f"census:{partition}".encode()


def backlog_key(partition: int) -> bytes:
    """The due instant of the partition's earliest timer a tick left unfired (absent:
    every timer due by the clock has fired)."""
    return f"backlog:{partition}".encode()


def history_prefix(customer_id: str) -> bytes:
    """The first bytes of every key of the customer's history (length-prefixed, so no
    customer's keys run into another's)."""
    encoded = customer_id.encode()
    return _HISTORY_ID_LENGTH.pack(len(encoded)) + encoded


def history_key(customer_id: str, seq: int) -> bytes:
    """The key of the customer's change number ``seq``: keys sort by customer, then seq."""
    return history_prefix(customer_id) + _HISTORY_SEQ.pack(seq)
