"""Throughput of `segments sender` against a local SMTP sink, beside the sink's raw
smtplib send rate in the same run.

1. raw: a separate process sends N messages of the same size over one smtplib
   connection to the sink, nothing else (the ceiling for one sequential client);
2. sender: N email actions are produced to fresh topics, then a real `segments sender`
   process sends them (ledger writes with fsync, rendering, re-checks included).
   Its rate is measured from the first to the last message the sink received, so the
   sender's start-up (Kafka group join) is excluded; the end-to-end time is printed too.

The sink (aiosmtpd) runs in this process's thread; both clients are other processes.

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 .venv/bin/python bench/bench_sender.py --messages 2000
"""

from __future__ import annotations

import argparse
import os
import platform
import smtplib
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stream.broker.local import free_port  # noqa: E402
from stream.sender.sink import SinkHandler, SmtpSink  # noqa: E402
from tests.integration.sender_harness import SenderNamespace  # noqa: E402
from tests.unit.sender.helpers import action_record  # noqa: E402


def raw_client(port: int, count: int, size: int) -> None:
    """The baseline: smtplib.sendmail in a loop on one connection."""
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
    body = ("x" * 76 + "\n") * max(1, size // 77)
    for n in range(count):
        message = EmailMessage()
        message["Subject"] = f"raw {n}"
        message["From"] = "news@shop.example"
        message["To"] = f"raw{n}@customers.example"
        message["Message-ID"] = f"<raw-{n}@shop.example>"
        message.set_content(body)
        smtp.send_message(message)
    smtp.quit()


def wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--raw-client", nargs=3, type=int, metavar=("PORT", "COUNT", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_client:
        raw_client(*args.raw_client)
        return
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    count = args.messages
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        customers = [f"b{n:06d}" for n in range(count)]
        handler = SinkHandler()
        ns = SenderNamespace(bootstrap, f"bench-sender-{int(time.time())}", tmp,
                             contacts={c: f"{c}@customers.example" for c in customers}, handler=handler)
        try:
            # Phase 1: raw smtplib, messages the size of a rendered action email.
            size = 1800
            raw_sink = SmtpSink(SinkHandler(), port=free_port()).start()
            started = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--raw-client", str(raw_sink.port), str(count), str(size)], check=True)
            raw_seconds = time.perf_counter() - started
            raw_received = raw_sink.handler.received()
            raw_sink.stop()
            assert len(raw_received) == count
            raw_rate = (count - 1) / (raw_received[-1].received_at - raw_received[0].received_at)

            # Phase 2: the sender.
            actions = [action_record(customer_id=c, seed=f"bench-{c}-{time.time()}") for c in customers]
            ns.produce("actions", actions)
            total = len(actions)
            started = time.perf_counter()
            ns.start(ready_timeout=120)
            wait_for(lambda: len(handler.received()) >= total, 1800)
            end_to_end = time.perf_counter() - started
            received = handler.received()
            sender_rate = (len(received) - 1) / (received[-1].received_at - received[0].received_at)
            sizes = sorted(len(mail.content) for mail in received)
            counts = ns.states()
            ns.stop()
        finally:
            ns.close()
    states = {state: list(counts.values()).count(state) for state in set(counts.values())}
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, {platform.system()}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d}")
    print(f"messages: {count} (sender message size median {sizes[len(sizes) // 2]} bytes; raw {size} bytes of body)")
    print(f"raw smtplib:  {raw_rate:8.1f} emails/s ({raw_seconds:.1f} s with process start)")
    print(f"sender:       {sender_rate:8.1f} emails/s (first to last delivery; {end_to_end:.1f} s from process start)")
    print(f"sender / raw: {sender_rate / raw_rate:.2f}")
    print(f"ledger: {states}")


if __name__ == "__main__":
    main()
