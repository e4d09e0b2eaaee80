"""The worker's state cache: least recently used out first, bounded by its estimate."""

from __future__ import annotations

from stream.core.state import CustomerState
from stream.worker.state_cache import StateCache, estimated_bytes


def test_keeps_the_most_recently_used_states_within_its_bound() -> None:
    cache = StateCache(3 * estimated_bytes(100))
    states = {name: CustomerState(name) for name in "abcd"}
    for name in "abc":
        cache.put(states[name], 100, cache.generation)
    assert cache.get("a") is states["a"]  # "b" is now the least recently used
    cache.put(states["d"], 100, cache.generation)
    assert cache.get("b") is None
    assert [cache.get(name) for name in "acd"] == [states["a"], states["c"], states["d"]]
    assert (cache.hits, cache.misses) == (4, 1)
    assert cache.size_bytes == 3 * estimated_bytes(100) and len(cache) == 3


def test_a_state_put_again_is_counted_once_at_its_new_size() -> None:
    cache = StateCache(10 * estimated_bytes(100))
    state = CustomerState("a")
    cache.put(state, 100, cache.generation)
    cache.put(state, 400, cache.generation)
    assert len(cache) == 1 and cache.size_bytes == estimated_bytes(400)


def test_a_larger_state_pushes_out_as_many_as_it_needs() -> None:
    cache = StateCache(4 * estimated_bytes(100))
    for name in "abcd":
        cache.put(CustomerState(name), 100, cache.generation)
    cache.put(CustomerState("big"), 250, cache.generation)  # 2,750 estimated bytes: two of 1,700 go
    assert cache.get("a") is None and cache.get("b") is None
    assert all(cache.get(name) is not None for name in ("c", "d", "big"))
    assert cache.size_bytes <= cache.capacity_bytes


def test_states_larger_than_the_cache_and_a_zero_cache_keep_nothing() -> None:
    small = StateCache(estimated_bytes(100))
    small.put(CustomerState("huge"), 101, small.generation)
    assert len(small) == 0 and small.size_bytes == 0
    off = StateCache(0)
    off.put(CustomerState("a"), 1, off.generation)
    assert off.get("a") is None and len(off) == 0


def test_clear_forgets_everything() -> None:
    cache = StateCache(1 << 20)
    cache.put(CustomerState("a"), 10, cache.generation)
    cache.clear()
    assert cache.get("a") is None and cache.size_bytes == 0


def test_a_batch_begun_before_a_clear_keeps_its_states_to_itself() -> None:
    cache = StateCache(1 << 20)
    began = cache.generation
    cache.clear()  # a rebalance while the batch was waiting for its sends
    cache.put(CustomerState("a"), 10, began)
    assert cache.get("a") is None
    cache.put(CustomerState("a"), 10, cache.generation)
    assert cache.get("a") is not None
