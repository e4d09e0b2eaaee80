"""A kafka-python consumer run as a real process by tests/integration/test_lag.py.

    python -m tests.integration.apps.lag_consumer BOOTSTRAP TOPIC GROUP drain
        read the topic to its current end, commit, leave the group and exit;
    python -m tests.integration.apps.lag_consumer BOOTSTRAP TOPIC GROUP hold OFFSET
        join the group, then commit OFFSET on every assigned partition again and again
        without reading anything (alive and committing, never advancing) until killed.

Prints "drained" / "holding" on stdout once it got there.
"""

from __future__ import annotations

import logging
import sys
import time

from kafka import KafkaConsumer, OffsetAndMetadata

from stream.clients.group_consumer import subscribe_when_known

# What the group coordination did, on stderr: the test shows it if a holder never holds.
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def drain(consumer: KafkaConsumer) -> None:
    while not consumer.assignment():
        consumer.poll(timeout_ms=200)
    assigned = list(consumer.assignment())
    ends = consumer.end_offsets(assigned)
    while any(consumer.position(tp) < ends[tp] for tp in assigned):
        consumer.poll(timeout_ms=200)
    consumer.commit()
    consumer.close()  # leaves the group: no live member owns the partitions any more
    print("drained", flush=True)


def hold(consumer: KafkaConsumer, offset: int) -> None:
    while not consumer.assignment():
        consumer.poll(timeout_ms=200)
    assigned = list(consumer.assignment())
    # Paused partitions fetch nothing, but polling keeps the member in the group.
    consumer.pause(*assigned)
    announced = False
    while True:
        consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp in assigned})
        if not announced:
            print("holding", flush=True)
            announced = True
        consumer.poll(timeout_ms=300)
        time.sleep(0.2)


def subscribed(bootstrap: str, topic: str, group: str, mode: str) -> KafkaConsumer:
    """A group member of ``topic``, subscribed as the sender subscribes (see
    stream/clients/group_consumer.py for the kafka-python hang this avoids)."""
    consumer = KafkaConsumer(
        group_id=group, bootstrap_servers=bootstrap, client_id=f"lag-test-{mode}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )
    subscribe_when_known(consumer, topic)
    return consumer


def main(argv: list[str]) -> None:
    bootstrap, topic, group, mode, *rest = argv
    consumer = subscribed(bootstrap, topic, group, mode)
    if mode == "drain":
        drain(consumer)
    elif mode == "hold":
        hold(consumer, int(rest[0]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
