from stream.processing.merge import EventTimeMerger, InputQuiet


def test_holds_events_until_every_partition_has_caught_up_in_time() -> None:
    merger: EventTimeMerger[str] = EventTimeMerger()
    partitions = ["orders/0", "carts/0"]
    never_exhausted = lambda partition: False  # noqa: E731
    merger.add("orders/0", 0, 100, "order@100")
    merger.add("orders/0", 1, 300, "order@300")
    assert merger.release(partitions, never_exhausted) == []  # carts/0 could still send older events
    merger.add("carts/0", 0, 200, "cart@200")
    # carts/0 is empty again after its event: order@300 waits for it.
    assert merger.release(partitions, never_exhausted) == ["order@100", "cart@200"]
    assert len(merger) == 1


def test_an_exhausted_partition_does_not_hold_the_others_back() -> None:
    merger: EventTimeMerger[str] = EventTimeMerger()
    merger.add("orders/0", 0, 500, "late order")
    assert merger.release(["orders/0", "carts/0"], lambda partition: partition == "carts/0") == ["late order"]


def test_equal_instants_keep_arrival_order() -> None:
    merger: EventTimeMerger[str] = EventTimeMerger()
    for index, name in enumerate(["first", "second", "third"]):
        merger.add("p", index, 100, name)
    assert merger.release(["p"], lambda partition: True) == ["first", "second", "third"]


def test_a_partition_keeps_its_own_order_so_late_events_stay_late() -> None:
    merger: EventTimeMerger[str] = EventTimeMerger()
    merger.add("a", 0, 100, "a@100")
    merger.add("a", 1, 40, "a@40")  # older than a's latest: late on its own partition
    merger.add("b", 0, 50, "b@50")
    merger.add("b", 1, 200, "b@200")
    assert merger.release(["a", "b"], lambda partition: True) == ["b@50", "a@100", "a@40", "b@200"]


def test_equal_instants_across_partitions_follow_record_timestamps() -> None:
    merger: EventTimeMerger[str] = EventTimeMerger()
    merger.add("b", 0, 100, "sent second", arrived_at=2)
    merger.add("a", 0, 100, "sent first", arrived_at=1)
    assert merger.release(["a", "b"], lambda partition: True) == ["sent first", "sent second"]


def test_clear_drops_what_is_held_and_the_progress() -> None:
    merger: EventTimeMerger[str] = EventTimeMerger()
    merger.add("orders/0", 0, 100, "a")
    merger.add("carts/0", 4, 50, "b")
    assert sorted(merger.clear()) == ["a", "b"]
    assert len(merger) == 0 and merger.last_offset == {}
    assert merger.release(["orders/0"], lambda partition: True) == []


def test_an_event_older_than_what_went_ahead_of_its_exhausted_partition_is_reported() -> None:
    merger: EventTimeMerger[str] = EventTimeMerger()
    partitions = ["orders/0", "carts/0"]
    assert merger.add("carts/0", 0, 100, "cart@100") is None
    assert merger.add("carts/0", 1, 300, "cart@300") is None
    # orders/0 is empty and counts as read to its end: both carts go ahead of it.
    assert merger.release(partitions, lambda partition: partition == "orders/0") == ["cart@100", "cart@300"]
    assert merger.add("orders/0", 0, 200, "order@200") == 300  # overtaken by cart@300
    assert merger.add("orders/0", 1, 150, "order@150") is None  # reported once, with the first
    # Newer than what went ahead: not overtaken.
    assert merger.release(partitions, lambda partition: True) == ["order@200", "order@150"]
    assert merger.add("orders/0", 2, 400, "order@400") is None
    # carts/0 was empty while the orders went ahead, but nothing older came from it.
    assert merger.add("carts/0", 2, 250, "cart@250") is None


def test_a_partition_that_held_the_others_back_is_never_reported() -> None:
    merger: EventTimeMerger[str] = EventTimeMerger()
    merger.add("carts/0", 0, 300, "cart@300")
    assert merger.release(["orders/0", "carts/0"], lambda partition: False) == []
    assert merger.add("orders/0", 0, 200, "order@200") is None
    assert merger.release(["orders/0", "carts/0"], lambda partition: False) == ["order@200"]


# ---------------------------------------------------------------- InputQuiet

QUIET, IDLE = 0.2, 2.0


def test_a_partition_read_from_is_exhausted_once_the_broker_confirms_its_end_after_it_went_quiet() -> None:
    quiet = InputQuiet(QUIET, IDLE)
    quiet.delivered("orders/0", 10.0)  # took offsets up to 4
    assert quiet.quiet(["orders/0"], 10.1) == []
    assert quiet.quiet(["orders/0"], 10.25) == ["orders/0"]
    assert not quiet.exhausted("orders/0", 4, 10.3)  # quiet, but not confirmed
    quiet.confirmed("orders/0", 10.3, 7)  # the broker has 5 and 6 we have not got yet
    assert not quiet.exhausted("orders/0", 4, 10.4)
    quiet.confirmed("orders/0", 10.5, 5)
    assert quiet.exhausted("orders/0", 4, 10.6)


def test_a_confirmation_asked_before_the_last_delivery_does_not_count() -> None:
    quiet = InputQuiet(QUIET, IDLE)
    quiet.delivered("orders/0", 10.0)
    quiet.confirmed("orders/0", 10.5, 5)
    quiet.delivered("orders/0", 10.6)  # offset 5 arrived: the partition is busy again
    assert not quiet.exhausted("orders/0", 5, 11.0)
    quiet.confirmed("orders/0", 11.0, 6)
    assert quiet.exhausted("orders/0", 5, 11.1)


def test_a_partition_never_read_from_is_exhausted_when_confirmed_empty() -> None:
    quiet = InputQuiet(QUIET, IDLE)
    quiet.delivered("orders/0", 10.0)
    assert not quiet.exhausted("carts/0", None, 10.5)
    quiet.confirmed("carts/0", 10.5, 0)
    assert quiet.first_unread("carts/0", None) is None  # where it resumes is the caller's to find
    assert not quiet.exhausted("carts/0", None, 10.6)
    quiet.nothing_before("carts/0", 0, quiet.epoch)
    assert quiet.exhausted("carts/0", None, 10.6)


def test_a_partition_never_read_from_needs_nothing_left_before_its_end_and_its_idle_time() -> None:
    quiet = InputQuiet(QUIET, IDLE)
    quiet.delivered("orders/0", 10.0)
    quiet.confirmed("carts/1", 10.5, 40)  # an earlier run read it up to 40, or not
    assert not quiet.exhausted("carts/1", None, 12.0)  # silent long enough, but what is left?
    quiet.nothing_before("carts/1", 40, quiet.epoch)  # the group's committed offset is 40
    assert not quiet.exhausted("carts/1", None, 11.9)  # its next records may be a moment behind
    assert quiet.exhausted("carts/1", None, 12.0)


def test_a_backlog_not_fetched_yet_holds_the_others_back_however_long_the_silence() -> None:
    """After a long pause a partition may hold records the consumer has not fetched yet
    (say its leader is another broker): its silence proves nothing."""
    quiet = InputQuiet(QUIET, IDLE)
    quiet.delivered("orders/0", 10.0)
    quiet.confirmed("carts/1", 3600.0, 45)  # committed offset 40: five records to come
    assert not quiet.exhausted("carts/1", None, 3600.1)


def test_offsets_holding_no_message_count_as_read_once_the_caller_found_so() -> None:
    """A transactional producer's commit marker ends the partition one offset past its
    last record, and no message is ever delivered from it."""
    quiet = InputQuiet(QUIET, IDLE)
    quiet.delivered("orders/0", 10.0)  # took offsets up to 4; 5 is a commit marker
    quiet.confirmed("orders/0", 10.5, 6)
    assert quiet.first_unread("orders/0", 4) == 5
    assert not quiet.exhausted("orders/0", 4, 10.6)
    quiet.nothing_before("orders/0", 6, quiet.epoch)
    assert quiet.first_unread("orders/0", 4) == 6
    assert quiet.exhausted("orders/0", 4, 10.6)
    # More records after the marker: what was taken counts again.
    quiet.delivered("orders/0", 11.0)
    quiet.confirmed("orders/0", 11.5, 9)
    assert quiet.first_unread("orders/0", 8) == 9
    assert quiet.exhausted("orders/0", 8, 11.6)


def test_a_finding_made_before_a_rebalance_does_not_count_after_it() -> None:
    """The rebalance may move where reading resumes back (offsets taken but not
    committed are read again): nothing left before the end then is a claim about the
    wrong offsets."""
    quiet = InputQuiet(QUIET, IDLE)
    quiet.delivered("orders/0", 10.0)
    epoch = quiet.epoch
    quiet.forget()
    quiet.nothing_before("carts/0", 40, epoch)
    assert quiet.first_unread("carts/0", None) is None


def test_silence_counts_from_the_first_delivery_not_from_before() -> None:
    """Nothing delivered for a while after the assignment (a table recovery): a partition
    whose first records are on their way must not count as idle when the first
    records of another arrive."""
    quiet = InputQuiet(QUIET, IDLE)
    assert quiet.quiet(["carts/0"], 50.0) == []
    quiet.delivered("orders/0", 100.0)
    quiet.confirmed("carts/0", 100.1, 7)
    quiet.nothing_before("carts/0", 7, quiet.epoch)
    assert not quiet.exhausted("carts/0", None, 100.1)
    assert quiet.exhausted("carts/0", None, 102.0)


def test_forget_starts_the_silence_over_as_at_a_new_assignment() -> None:
    quiet = InputQuiet(QUIET, IDLE)
    quiet.delivered("orders/0", 10.0)
    quiet.delivered("carts/0", 10.0)
    quiet.confirmed("carts/0", 10.5, 3)
    assert quiet.exhausted("carts/0", 2, 10.6)
    quiet.forget()  # a rebalance: the merger forgot every partition's progress too
    quiet.delivered("orders/0", 30.0)  # the first records after it
    # carts/0 was silent for 20 s, but all of that before the rebalance.
    assert not quiet.exhausted("carts/0", None, 30.1)
    assert quiet.confirmed_end("carts/0") == (0.0, -1)
    quiet.confirmed("carts/0", 30.3, 3)
    quiet.nothing_before("carts/0", 3, quiet.epoch)  # the committed offset is 3
    assert not quiet.exhausted("carts/0", None, 31.9)
    assert quiet.exhausted("carts/0", None, 32.0)


def test_records_found_past_the_first_unread_offset_are_not_looked_for_again_until_it_moves() -> None:
    quiet = InputQuiet(QUIET, IDLE)
    assert quiet.worth_looking("carts/1", 40)
    quiet.records_from("carts/1", 40, quiet.epoch)
    assert not quiet.worth_looking("carts/1", 40)
    assert quiet.worth_looking("carts/1", 43)  # read up to 42 since: what is past it?
    quiet.forget()  # where reading resumes may have moved back
    assert quiet.worth_looking("carts/1", 40)


def test_describe_says_why_a_partition_holds_the_others_back() -> None:
    quiet = InputQuiet(QUIET, IDLE)
    quiet.delivered("orders/0", 10.0)  # took offsets up to 4; 5 is a commit marker
    assert quiet.describe("orders/0", 4, 10.1) == {
        "read_to_end": False, "silent_seconds": 0.1, "first_unread": 5, "broker_end": None,
        "broker_end_asked_seconds_ago": None, "records_found_from": None,
    }
    quiet.confirmed("orders/0", 10.5, 6)
    assert quiet.describe("orders/0", 4, 10.6)["broker_end"] == 6
    assert not quiet.describe("orders/0", 4, 10.6)["read_to_end"]
    quiet.nothing_before("orders/0", 6, quiet.epoch)
    assert quiet.describe("orders/0", 4, 10.6)["read_to_end"]


def test_the_merger_says_how_many_events_each_partition_holds() -> None:
    merger: EventTimeMerger[str] = EventTimeMerger()
    merger.add("orders/0", 0, 100, "a")
    merger.add("orders/0", 1, 200, "b")
    merger.add("carts/0", 0, 150, "c")
    assert (merger.held_in("orders/0"), merger.held_in("carts/0"), merger.held_in("opens/0")) == (2, 1, 0)
