from stream.core.state import CustomerState
from stream.processing.census import NO_SEGMENT, Census, combine


def state(customer_id: str, segment: str | None, tags: tuple[str, ...] = ()) -> CustomerState:
    return CustomerState(customer_id, segment=segment, tags=tags)


def test_new_customer_then_moves_keep_counts_exact() -> None:
    census = Census()
    census.move(None, (None, ("prospect",)))
    assert (census.customers, census.segments[NO_SEGMENT], census.tags["prospect"]) == (1, 1, 1)
    census.move((None, ("prospect",)), ("New Customers", ("one_time_buyer",)))
    assert census.customers == 1
    assert +census.segments == {"New Customers": 1}
    assert +census.tags == {"one_time_buyer": 1}


def test_round_trip_and_count_from_states() -> None:
    states = [state("a", "Champions", ("high_spender",)), state("b", None, ("prospect",)), state("c", "Champions")]
    census = Census.count(states, timers=2)
    assert census.segments == {"Champions": 2, NO_SEGMENT: 1}
    again = Census.from_bytes(census.to_bytes())
    assert again == census


def test_combine_adds_partitions() -> None:
    one = Census.count([state("a", "Lost")], timers=1)
    two = Census.count([state("b", "Lost"), state("c", "Promising")], timers=3)
    total = combine([one, two])
    assert (total.customers, total.timers, total.segments["Lost"]) == (3, 4, 2)
