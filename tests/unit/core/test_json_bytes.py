import tracemalloc

import orjson

from stream.core.json_bytes import dumps_compact
from stream.core.state import CustomerState

RECORD = {"customer_id": "c0000001", "kind": "segment", "from": "new", "to": "promising", "scores": [3, 1, 2],
          "metrics": {"recency_days": 31, "frequency": 1, "monetary": 42.5}}


def test_the_same_bytes_as_orjson():
    assert dumps_compact(RECORD) == orjson.dumps(RECORD)
    assert dumps_compact(RECORD, option=orjson.OPT_SORT_KEYS) == orjson.dumps(RECORD, option=orjson.OPT_SORT_KEYS)
    assert type(dumps_compact(RECORD)) is bytes


def _held_per_value(make) -> float:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = [make() for _ in range(1000)]
        return (tracemalloc.get_traced_memory()[0] - before - len(held) * 8) / len(held)
    finally:
        tracemalloc.stop()


def test_a_held_value_takes_about_its_own_size():
    """A batch holds thousands of these until they are written and sent: each must take
    its length, not the buffer orjson wrote it into (8 KiB with orjson 3.13)."""
    length = len(orjson.dumps(RECORD))
    assert _held_per_value(lambda: dumps_compact(RECORD)) < length + 100


def test_state_bytes_are_compact():
    state = CustomerState(customer_id="c0000001")
    length = len(state.to_bytes())
    assert _held_per_value(state.to_bytes) < length + 100
