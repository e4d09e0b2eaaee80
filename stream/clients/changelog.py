"""A table changelog read as the table: the latest value of each key, from Kafka."""

from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition

from stream.clients.settings import KafkaSettings


class ChangelogReader:
    """Latest value per (partition, key) of a compacted changelog topic (a null value
    deletes the key). :meth:`read_to_end` may be called again: it takes up what was
    written since, so following a changelog does not read it from the start each time.
    Reads committed records only, as a worker restoring the table would."""

    def __init__(self, kafka: KafkaSettings, topic: str, partitions: list[int] | None = None) -> None:
        self._consumer = KafkaConsumer(
            client_id="segments-changelog-reader", enable_auto_commit=False, isolation_level="read_committed",
            **kafka.kafka_python_kwargs(),
        )
        available = sorted(self._consumer.partitions_for_topic(topic) or [])
        self._wanted = [TopicPartition(topic, p) for p in available if partitions is None or p in partitions]
        if self._wanted:
            self._consumer.assign(self._wanted)
            self._consumer.seek_to_beginning(*self._wanted)
        self.latest: dict[tuple[int, bytes], bytes] = {}

    def read_to_end(self) -> dict[tuple[int, bytes], bytes]:
        if not self._wanted:
            return self.latest
        consumer = self._consumer
        ends = consumer.end_offsets(self._wanted)
        while any(consumer.position(tp) < ends[tp] for tp in self._wanted):
            for tp, records in consumer.poll(timeout_ms=1000).items():
                for record in records:
                    if record.value is None:
                        self.latest.pop((tp.partition, record.key), None)
                    else:
                        self.latest[(tp.partition, record.key)] = record.value
        return self.latest

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> ChangelogReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
