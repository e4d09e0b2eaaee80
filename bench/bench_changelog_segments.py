"""What a table of few keys rewritten every batch leaves in its changelog: records held
(what a table recovery and `segments replay --wait` / `snapshot` / `rules check
--worker` read) with the broker's default segment.ms (a week) beside a short one.

Two compacted topics side by side in one run, written alike: ``--keys`` keys rewritten
``--rate`` times a second in all (an idle wall-clock worker's clocks table: 4 partitions,
a tick a second each, about 9 records a second). Compaction cleans closed segments only.
The worker's few-keys changelogs roll every 10 minutes (FEW_KEYS_CHANGELOG in
stream/worker/plumbing.py); ``--segment-seconds`` scales that down so the run takes
minutes. Every ``--report-seconds``, each topic is read to its end through the
ChangelogReader the CLI uses, timed.

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 .venv/bin/python bench/bench_changelog_segments.py --seconds 150

``--read-records N`` measures instead how fast the ChangelogReader reads N records of
such a changelog (4 partitions, 4 keys), to put a figure on a week of them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.clients import KafkaSettings  # noqa: E402
from stream.clients.changelog import ChangelogReader  # noqa: E402


def read_all(kafka: KafkaSettings, topic: str) -> tuple[int, float]:
    """(records read, seconds) for reading ``topic`` to its end from the start."""
    started = time.monotonic()
    records = 0
    with ChangelogReader(kafka, topic) as reader:
        consumer = reader._consumer
        # Count every record read, not only the keys kept.
        original_poll = consumer.poll

        def counting_poll(*args, **kwargs):
            nonlocal records
            polled = original_poll(*args, **kwargs)
            records += sum(len(batch) for batch in polled.values())
            return polled

        consumer.poll = counting_poll  # type: ignore[method-assign]
        reader.read_to_end()
    return records, time.monotonic() - started


def read_rate(kafka: KafkaSettings, bootstrap: str, count: int) -> None:
    topic = f"bench-changelog-read-{int(time.time())}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 4, 1, topic_configs={"cleanup.policy": "compact"})])
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024)
    for number in range(count):
        producer.send(topic, key=b"clock:%d" % (number % 4), value=b"1795854026000", partition=number % 4)
    producer.close()
    records, seconds = read_all(kafka, topic)
    print(f"read {records:,} records in {seconds:.1f} s: {records / seconds:,.0f} records/s")
    admin.delete_topics([topic])
    admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=150)
    parser.add_argument("--keys", type=int, default=4)
    parser.add_argument("--rate", type=float, default=40.0, help="records a second to each topic")
    parser.add_argument("--segment-seconds", type=float, default=20.0)
    parser.add_argument("--report-seconds", type=float, default=30.0)
    parser.add_argument("--read-records", type=int, help="measure the reader's rate on this many records instead")
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    if args.read_records:
        read_rate(kafka, bootstrap, args.read_records)
        return
    stamp = str(int(time.time()))
    topics = {"broker default": f"bench-changelog-default-{stamp}", "short segments": f"bench-changelog-short-{stamp}"}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([
        NewTopic(topics["broker default"], 1, 1, topic_configs={"cleanup.policy": "compact"}),
        NewTopic(topics["short segments"], 1, 1, topic_configs={
            "cleanup.policy": "compact", "segment.ms": str(int(args.segment_seconds * 1000)),
        }),
    ])
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    print(f"{args.keys} keys, {args.rate:.0f} records/s to each topic, short segments roll after {args.segment_seconds:.0f}s")
    print("| after | written | held, broker default | read, broker default | held, short segments | read, short segments |")
    print("|---|---|---|---|---|---|")
    started = time.monotonic()
    written = 0
    next_report = args.report_seconds
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= next_report or elapsed >= args.seconds:
            producer.flush()
            cells = []
            for topic in topics.values():
                records, seconds = read_all(kafka, topic)
                cells += [f"{records:,}", f"{seconds * 1000:.0f} ms"]
            print(f"| {elapsed:.0f} s | {written:,} | " + " | ".join(cells) + " |", flush=True)
            next_report += args.report_seconds
            if elapsed >= args.seconds:
                break
        key = f"k{written % args.keys}".encode()
        for topic in topics.values():
            producer.send(topic, key=key, value=str(written).encode())
        written += 1
        time.sleep(max(0.0, written / args.rate - (time.monotonic() - started)))
    producer.close()
    admin.delete_topics(list(topics.values()))
    admin.close()


if __name__ == "__main__":
    main()
