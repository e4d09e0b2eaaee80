"""The worker's faust consumers fetch with a short wait (faust_patches.FETCH_MAX_WAIT_MS)
and read committed records only: the patch reaches the fetcher of a real aiokafka
consumer started against the broker."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import READ_COMMITTED
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from stream.clients import KafkaSettings
from stream.worker import faust_patches

pytestmark = pytest.mark.integration


def test_faust_worker_consumers_fetch_with_the_short_wait_read_committed(kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    # faust's own factory needs a running app; stand in for it with a plain consumer
    # built the way faust builds one for an app without transactions.
    made: list[AIOKafkaConsumer] = []

    def faust_factory(self: object, transport: object) -> AIOKafkaConsumer:
        made.append(AIOKafkaConsumer(fetch_max_wait_ms=1500, isolation_level="read_uncommitted", **kafka.aiokafka_kwargs()))
        return made[-1]

    monkeypatch.setattr(AIOKafkaConsumerThread, "_create_worker_consumer", faust_factory)
    faust_patches.worker_consumer_settings()
    faust_patches.worker_consumer_settings()  # applied once, however many apps are built

    async def started_fetch_wait() -> tuple[int, int]:
        consumer = AIOKafkaConsumerThread._create_worker_consumer(SimpleNamespace(), None)
        await consumer.start()
        try:
            return consumer._fetcher._fetch_max_wait_ms, consumer._fetcher._isolation_level
        finally:
            await asyncio.sleep(0.1)  # aiokafka 0.14 fails a stop right after start
            await consumer.stop()

    assert asyncio.run(started_fetch_wait()) == (faust_patches.FETCH_MAX_WAIT_MS, READ_COMMITTED)
    assert len(made) == 1
