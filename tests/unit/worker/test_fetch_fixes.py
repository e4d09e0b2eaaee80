"""stream/worker/fetch_fixes.py: a fetch asks for the partitions active when it starts,
and records faust drops are fetched again for changelog partitions under recovery."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from stream.worker import fetch_fixes
from stream.worker.fetch_fixes import recovery_offsets

ORDERS = TP("orders", 2)
CUSTOMERS = TP("customers-changelog", 2)
TIMERS = TP("timers-changelog", 2)
STANDBY = TP("customers-changelog", 0)


def test_a_fetch_asks_for_the_partitions_active_when_it_starts() -> None:
    from faust.transport.drivers.aiokafka import Consumer

    fetch_fixes.apply_fetch_fixes()
    live = {ORDERS}
    asked: list[Any] = []

    class Thread:
        async def getmany(self, partitions: Any, timeout: float) -> dict:
            live.clear()  # a rebalance pauses every partition while the fetch waits
            await asyncio.sleep(0)
            asked.append(set(partitions))  # aiokafka reads an empty set as "all of them"
            return {}

    asyncio.run(Consumer._getmany(SimpleNamespace(_thread=Thread()), live, 1.0))
    assert asked == [{ORDERS}]


def _recovery(in_recovery: bool = True) -> SimpleNamespace:
    return SimpleNamespace(
        in_recovery=in_recovery,
        active_tps={CUSTOMERS, TIMERS},
        active_offsets={CUSTOMERS: -1, TIMERS: 41},
        standby_tps={STANDBY},
        standby_offsets={STANDBY: 7},
    )


def test_the_recovery_offsets_are_where_the_recovery_would_seek_itself() -> None:
    # -1 (nothing applied yet) is the beginning; a source partition is not the recovery's.
    assert recovery_offsets(_recovery(), [ORDERS, CUSTOMERS, TIMERS, STANDBY]) == {CUSTOMERS: 0, TIMERS: 41, STANDBY: 7}


def test_after_the_recovery_only_standbys_are_sent_for() -> None:
    assert recovery_offsets(_recovery(in_recovery=False), [CUSTOMERS, STANDBY]) == {STANDBY: 7}


class _Consumer:
    """What faust's getmany uses of its consumer: a batch of records per partition,
    the flow, and where seeks go."""

    def __init__(self, records: dict, *, flow_active: bool = True, stop_flow_after: int | None = None) -> None:
        self.records, self.flow_active, self.stop_flow_after = records, flow_active, stop_flow_after
        self.seeks: list[dict] = []
        self.performed_seeks = 0
        self._buffered_partitions: set = set()
        self.inactive: set = set()  # partitions paused since the fetch started
        self.scheduler = SimpleNamespace(iterate=self._round_robin)
        self.log = SimpleNamespace(dev=lambda *args: None)
        self.should_stop = False
        self.app = SimpleNamespace(
            consumer_generation_id=3,
            monitor=SimpleNamespace(track_tp_end_offset=lambda tp, offset: None),
            tables=SimpleNamespace(recovery=_recovery()),
            consumer=self,
        )

    async def _wait_next_records(self, timeout: float) -> tuple[dict, set]:
        return self.records, set(self.records) - self.inactive

    def _round_robin(self, records: dict) -> Any:
        iterators = {tp: iter(batch) for tp, batch in records.items()}
        while iterators:
            for tp in list(iterators):
                record = next(iterators[tp], None)
                if record is None:
                    del iterators[tp]
                else:
                    yield tp, record

    def highwater(self, tp: Any) -> int:
        return 0

    def _to_message(self, tp: Any, record: int) -> tuple:
        return tp, record

    async def perform_seek(self) -> None:
        self.performed_seeks += 1

    async def seek_wait(self, offsets: dict) -> None:
        self.seeks.append(dict(offsets))


def _deliver(consumer: _Consumer) -> list[tuple]:
    from faust.transport.consumer import Consumer

    fetch_fixes.apply_fetch_fixes()

    async def drain() -> list[tuple]:
        delivered = []
        async for tp, message in Consumer.getmany(consumer, timeout=1.0):
            delivered.append(message)
            if consumer.stop_flow_after is not None and len(delivered) == consumer.stop_flow_after:
                consumer.flow_active = False  # a rebalance starts while the batch is delivered
        return delivered

    return asyncio.run(drain())


def test_a_batch_fetched_while_the_flow_is_stopped_is_fetched_again_for_the_recovery() -> None:
    consumer = _Consumer({ORDERS: [10, 11], CUSTOMERS: [0, 1, 2]}, flow_active=False)
    assert _deliver(consumer) == []
    assert consumer.performed_seeks == 1  # faust's own seek, to the committed offsets
    assert consumer.seeks == [{CUSTOMERS: 0}]


def test_a_batch_broken_off_is_fetched_again_for_the_recovery() -> None:
    consumer = _Consumer({CUSTOMERS: [0, 1, 2], TIMERS: [42, 43], ORDERS: [10]}, stop_flow_after=2)
    assert _deliver(consumer) == [(CUSTOMERS, 0), (TIMERS, 42)]
    # Partly delivered or not at all, each goes back to what the recovery has applied.
    assert consumer.seeks == [{CUSTOMERS: 0, TIMERS: 41}]


def test_records_skipped_as_no_longer_active_are_fetched_again_for_the_recovery() -> None:
    consumer = _Consumer({CUSTOMERS: [0, 1], TIMERS: [42], ORDERS: [10]})
    consumer.inactive = {TIMERS, ORDERS}
    assert _deliver(consumer) == [(CUSTOMERS, 0), (CUSTOMERS, 1)]
    assert consumer.seeks == [{TIMERS: 41}]  # the source partition is not the recovery's


def test_a_batch_delivered_whole_sends_for_nothing() -> None:
    consumer = _Consumer({CUSTOMERS: [0, 1], ORDERS: [10]})
    assert len(_deliver(consumer)) == 3
    assert consumer.seeks == []


def test_the_fixes_apply_once_and_leave_a_later_wrapper_in_place() -> None:
    from faust.transport.consumer import Consumer

    fetch_fixes.apply_fetch_fixes()
    fixed = Consumer.getmany

    async def wrapper(self: Any, timeout: float) -> Any:  # what tests/integration/apps/lossy_worker.py does
        async for item in fixed(self, timeout):
            yield item

    Consumer.getmany = wrapper  # type: ignore[method-assign]
    try:
        fetch_fixes.apply_fetch_fixes()
        assert Consumer.getmany is wrapper
    finally:
        Consumer.getmany = fixed  # type: ignore[method-assign]
