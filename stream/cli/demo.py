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

        # A few erasure requests too (about one customer in 500), as a shop receives them.
        events = generate_behaviour(orders, erasure_share=0.002)
    except ImportError:
        events = orders
    path = folder / "history.jsonl"
    write_jsonl(events, path)
    return path, len(events)


def _config(folder: Path, app_id: str, smtp_port: int) -> Path:
    """One config for the demo's worker, playbooks app and sender: topics, groups and
    state folders of their own, so demos never mix with each other or a real setup."""
    config = folder / "demo.toml"
    topics = {
        "orders": f"{app_id}-orders", "carts": f"{app_id}-carts", "email_opens": f"{app_id}-email-opens",
        "erasures": f"{app_id}-erasures",
        "events": f"{app_id}-events", "segment_changes": f"{app_id}-segment-changes",
        "customer_profiles": f"{app_id}-customer-profiles", "dead_letter": f"{app_id}-events-dlq",
    }
    topic_lines = "\n".join(f'{key} = "{value}"' for key, value in topics.items())
    config.write_text(
        f'[worker]\napp_id = "{app_id}"\ndata_dir = "{folder / "worker"}"\nclock = "event"\n'
        f"web_port = {free_port()}\n\n[worker.topics]\n{topic_lines}\n\n"
        f'[playbooks]\napp_id = "{app_id}-playbooks"\ndata_dir = "{folder / "playbooks"}"\n'
        f'playbook_file = "{_demo_playbook(folder)}"\nweb_port = {free_port()}\n\n'
        f'[playbooks.topics]\nactions = "{app_id}-playbook-actions"\n\n'
        f'[sender]\ngroup_id = "{app_id}-sender"\ndata_dir = "{folder / "sender"}"\n'
        f'recipient_pattern = "{{customer_id}}@example.com"\nmetrics_port = 0\n\n'
        f'[sender.topics]\nactions = "{app_id}-playbook-actions"\ndead_letter = "{app_id}-playbook-actions-dlq"\n'
        f'customer_profiles = "{app_id}-customer-profiles"\n\n'
        f'[sender.smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nfrom_address = "shop@example.com"\n'
    )
    return config


def _demo_playbook(folder: Path) -> Path:
    """The shipped playbook without quiet hours, so the emails arrive while you watch
    whatever the time of day."""
    import yaml

    from stream.playbooks import DEFAULT_PLAYBOOK_PATH

    document = yaml.safe_load(Path(DEFAULT_PLAYBOOK_PATH).read_text(encoding="utf-8"))
    document["policies"].pop("quiet_hours", None)
    path = folder / "demo-playbook.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


class LiveView:
    """Segment counts and the latest changes, from the segment-changes topic."""

    def __init__(self) -> None:
        self.segment_of: dict[str, str | None] = {}
        self.tag_counts: collections.Counter[str] = collections.Counter()
        self.recent: collections.deque[dict] = collections.deque(maxlen=12)
        self.changes = 0
        self.erased = 0
        self.last_at = ""

    def add(self, change: dict) -> None:
        self.changes += 1
        self.last_at = change["at"]
        if change["kind"] == "segment":
            self.segment_of[change["customer_id"]] = change["to"]
            self.recent.append(change)
        elif change["kind"] == "tag":
            self.tag_counts[change["tag"]] += 1 if change["entered"] else -1
        else:  # erasure: the customer left segment and tags in the changes before this one
            self.erased += 1
            self.recent = collections.deque(
                (recent for recent in self.recent if recent["customer_id"] != change["customer_id"]), maxlen=self.recent.maxlen,
            )

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
            cause = change["cause"].get("event_type", change["cause"]["kind"])
            feed.add_row(change["at"][:10], change["customer_id"], change["from"] or "-", change["to"] or "-", cause)
        header = Panel(f"{title}   changes: {self.changes}   erased: {self.erased}   event time: {self.last_at[:10] or '-'}")
        return Group(header, segments, tags, feed)


class Processes:
    """The demo's long-running commands, each logging to its own file."""

    def __init__(self, folder: Path, segments: list[str], env: dict[str, str]) -> None:
        self.folder = folder
        self.segments = segments
        self.env = env
        self.running: dict[str, subprocess.Popen] = {}
        self._logs: list = []

    def start(self, name: str, *args: str) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        self._logs.append(log)
        self.running[name] = subprocess.Popen([*self.segments, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def check(self) -> None:
        for name, process in self.running.items():
            if process.poll() is not None:
                raise click.ClickException(f"`segments {name}` stopped; see {self.folder / (name + '.log')}")

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in self._logs:
            log.close()


def _read_actions(kafka, topic: str) -> list[dict]:
    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=2000, **kafka.kafka_python_kwargs())
    try:
        return [orjson.loads(record.value) for record in consumer]
    finally:
        consumer.close()


def _emails_table(mail_dir: Path) -> Table:
    from email import message_from_bytes

    table = Table(title=f"Emails received by the local SMTP sink ({mail_dir})", expand=True)
    for column in ("#", "to", "subject"):
        table.add_column(column)
    for path in sorted(mail_dir.glob("*.eml")):
        message = message_from_bytes(path.read_bytes())
        table.add_row(path.stem.lstrip("0"), str(message["To"]), str(message["Subject"]))
    return table


@click.command("demo")
@click.option("--customers", type=int, help="Only the first N CDNOW customers (default: all 23,570).")
@click.option("--live-customers", type=int, default=24, show_default=True, help="Customers in the live traffic after the history.")
@click.pass_obj
def demo(context: CliContext, customers: int | None, live_customers: int) -> None:
    """Replay CDNOW (1997-98) plus generated carts and email opens through a worker, live;
    then a few hours of live traffic whose segment changes become emails in a local SMTP
    sink (worker -> playbooks -> sender -> sink)."""
    from stream.demo.live import live_events

    console = Console(stderr=True)
    kafka = context.kafka_settings()
    folder = Path(os.environ.get("SEGMENTS_HOME", ".segments")) / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    history, count = _history(folder, customers)
    app_id = f"demo-{int(time.time())}"
    smtp_port = free_port()
    config = _config(folder, app_id, smtp_port)
    mail_dir = folder / f"{app_id}-mail"
    console.print(f"[bold]Demo[/bold]: {count} events -> Kafka at {kafka.bootstrap_servers}; worker {app_id}")

    segments = [sys.executable, "-m", "stream.cli.main", "--config", str(config)]
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers}
    processes = Processes(folder, segments, env)
    processes.start("smtp-sink", "smtp-sink", "--port", str(smtp_port), "--save-dir", str(mail_dir), "--quiet")
    processes.start("worker", "worker")
    processes.start("playbooks", "playbooks", "run")
    processes.start("sender", "sender")
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
                processes.check()
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

        # Live traffic: changes inside the playbooks' backfill horizon become actions.
        now = time.time_ns() // 1_000_000
        live_file = folder / "live.jsonl"
        live_file.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in live_events(now, live_customers, prefix="live")))
        console.print(f"[bold]Live traffic[/bold]: {live_customers} customers ordering, carting and opening emails in the last 30 hours")
        subprocess.run([*segments, "replay", str(live_file), "--until", _rfc3339(now), "--wait", "--timeout", "600"],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        _show_actions_and_emails(console, kafka, f"{app_id}-playbook-actions", mail_dir, now, processes)
        console.print(f"Profiles: segments --config {config} snapshot   |   one customer: segments --config {config} profile live-000")
        console.print(f"Logs and emails: {folder}")
    finally:
        consumer.close()
        processes.stop()


def _rfc3339(ms: int) -> str:
    from stream.core.timeutil import rfc3339_ms

    return rfc3339_ms(ms)


def _show_actions_and_emails(console: Console, kafka, actions_topic: str, mail_dir: Path, now: int, processes: Processes) -> None:
    """Wait for the playbooks app's live actions and for the emails due now to arrive."""
    from stream.core.timeutil import parse_rfc3339_ms

    deadline = time.monotonic() + 120
    live: list[dict] = []
    while time.monotonic() < deadline:
        processes.check()
        live = [a for a in _read_actions(kafka, actions_topic) if a["customer_id"].startswith("live-")]
        due = [a for a in live if a["channel"] == "email" and a["status"] == "scheduled" and not a["holdout"]
               and parse_rfc3339_ms(a["not_before"]) <= now]
        arrived = len(list(mail_dir.glob("*.eml"))) if mail_dir.is_dir() else 0
        if live and arrived >= len(due):
            break
        time.sleep(1)
    outcomes = collections.Counter(
        ("holdout" if a["holdout"] else a["status"]) + (f" ({a['skip_reason']})" if a["skip_reason"] else "") for a in live
    )
    table = Table(title="Actions for the live customers (playbook-actions)", expand=True)
    table.add_column("outcome")
    table.add_column("actions", justify="right")
    for outcome, number in outcomes.most_common():
        table.add_row(outcome, str(number))
    console.print(table)
    if mail_dir.is_dir():
        console.print(_emails_table(mail_dir))
    console.print("Later actions (second reminders, follow-ups) wait in the sender's ledger until their not_before.")
