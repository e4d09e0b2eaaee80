"""``segments demo``: the CDNOW history and generated behaviour through a real worker,
with segment counts and the change feed shown live."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import orjson
from kafka import KafkaConsumer
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from stream.broker.local import free_port
from stream.cli.context import CliContext
from stream.demo.cdnow import DatasetMissing, cdnow_orders, time_ordered, write_jsonl
from stream.rules import SEGMENT_NAMES

UNTIL = "1998-07-01"


def _history(folder: Path, customers: int | None) -> tuple[Path, int]:
    try:
        orders = time_ordered(list(cdnow_orders(limit_customers=customers)))
    except DatasetMissing as error:
        raise click.ClickException(f"{error} (it is in the project's `demo` extra: pip install -e '.[demo]')") from None
    try:
        from stream.demo.generate import generate_behaviour

        events = generate_behaviour(orders)
    except ImportError:
        events = orders
    path = folder / "history.jsonl"
    write_jsonl(events, path)
    return path, len(events)


def _config(folder: Path, app_id: str) -> Path:
    config = folder / "demo.toml"
    topics = {
        "orders": f"{app_id}-orders", "carts": f"{app_id}-carts", "email_opens": f"{app_id}-email-opens",
        "events": f"{app_id}-events", "segment_changes": f"{app_id}-segment-changes",
        "customer_profiles": f"{app_id}-customer-profiles", "dead_letter": f"{app_id}-events-dlq",
    }
    topic_lines = "\n".join(f'{key} = "{value}"' for key, value in topics.items())
    config.write_text(
        f'[worker]\napp_id = "{app_id}"\ndata_dir = "{folder / "worker"}"\nclock = "event"\n'
        f"web_port = {free_port()}\n\n[worker.topics]\n{topic_lines}\n"
    )
    return config


class LiveView:
    """Segment counts and the latest changes, from the segment-changes topic."""

    def __init__(self) -> None:
        self.segment_of: dict[str, str | None] = {}
        self.tag_counts: collections.Counter[str] = collections.Counter()
        self.recent: collections.deque[dict] = collections.deque(maxlen=12)
        self.changes = 0
        self.last_at = ""

    def add(self, change: dict) -> None:
        self.changes += 1
        self.last_at = change["at"]
        if change["kind"] == "segment":
            self.segment_of[change["customer_id"]] = change["to"]
            self.recent.append(change)
        else:
            self.tag_counts[change["tag"]] += 1 if change["entered"] else -1

    def render(self, title: str) -> Group:
        counts = collections.Counter(segment for segment in self.segment_of.values() if segment)
        total = sum(counts.values()) or 1
        segments = Table(title=f"Customers per segment ({sum(counts.values())} with orders)", expand=True)
        segments.add_column("segment")
        segments.add_column("customers", justify="right")
        segments.add_column("", ratio=1)
        for name in SEGMENT_NAMES:
            share = counts.get(name, 0) / total
            segments.add_row(name, str(counts.get(name, 0)), "█" * int(share * 40))
        tags = Table(title="Tags", expand=True)
        tags.add_column("tag")
        tags.add_column("customers", justify="right")
        for tag, count in sorted(self.tag_counts.items()):
            tags.add_row(tag, str(count))
        feed = Table(title="Recent segment changes", expand=True)
        for column in ("at", "customer", "from", "to", "cause"):
            feed.add_column(column)
        for change in reversed(self.recent):
            cause = change["cause"]["kind"] if change["cause"]["kind"] == "time" else change["cause"]["event_type"]
            feed.add_row(change["at"][:10], change["customer_id"], change["from"] or "-", change["to"] or "-", cause)
        header = Panel(f"{title}   changes: {self.changes}   event time: {self.last_at[:10] or '-'}")
        return Group(header, segments, tags, feed)


@click.command("demo")
@click.option("--customers", type=int, help="Only the first N CDNOW customers (default: all 23,570).")
@click.pass_obj
def demo(context: CliContext, customers: int | None) -> None:
    """Replay CDNOW (1997-98) plus generated carts and email opens through a worker, live."""
    console = Console(stderr=True)
    kafka = context.kafka_settings()
    folder = Path(os.environ.get("SEGMENTS_HOME", ".segments")) / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    history, count = _history(folder, customers)
    app_id = f"demo-{int(time.time())}"
    config = _config(folder, app_id)
    console.print(f"[bold]Demo[/bold]: {count} events -> Kafka at {kafka.bootstrap_servers}; worker {app_id}")

    segments = [sys.executable, "-m", "stream.cli.main", "--config", str(config)]
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers}
    log = (folder / "worker.log").open("wb")
    worker = subprocess.Popen([*segments, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
    started = time.monotonic()
    replay = subprocess.Popen(
        [*segments, "replay", str(history), "--until", UNTIL, "--wait", "--timeout", "3600"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    view = LiveView()
    consumer = KafkaConsumer(
        f"{app_id}-segment-changes", auto_offset_reset="earliest", enable_auto_commit=False,
        consumer_timeout_ms=500, **kafka.kafka_python_kwargs(),
    )
    try:
        last_line = 0.0
        with Live(view.render("replaying..."), console=console, refresh_per_second=2, transient=not console.is_terminal) as live:
            while replay.poll() is None:
                for record in consumer:
                    view.add(orjson.loads(record.value))
                if worker.poll() is not None:
                    raise click.ClickException(f"the worker stopped; see {folder / 'worker.log'}")
                live.update(view.render(f"replaying... {time.monotonic() - started:.0f}s"))
                if not console.is_terminal and time.monotonic() - last_line >= 10:
                    # Not a terminal (CI, a pipe): a progress line instead of the live view.
                    last_line = time.monotonic()
                    print(f"{last_line - started:5.0f}s  {view.changes} changes, event time {view.last_at[:10] or '-'}", file=sys.stderr, flush=True)
            for record in consumer:  # the tail after the final tick
                view.add(orjson.loads(record.value))
        if replay.returncode != 0:
            raise click.ClickException(f"replay failed: {replay.stderr.read().decode()[-2000:]}")
        elapsed = time.monotonic() - started
        console.print(view.render(f"done: {count} events replayed and processed in {elapsed:.0f}s (worker start-up included)"))
        console.print(f"Profiles: segments --config {config} snapshot   |   one customer: segments --config {config} profile cdnow-00001")
    finally:
        consumer.close()
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
