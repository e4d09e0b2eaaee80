"""``segments replay``: publish a history of events to the input topics."""

from __future__ import annotations

import time

import click
import orjson
from kafka import KafkaProducer

from stream.cli.context import CliContext
from stream.cli.history import INSTANT, iter_lines
from stream.cli.snapshot import clocks_changelog, records_in
from stream.clients.changelog import ChangelogReader
from stream.clients.progress import end_offsets, wait_until_consumed
from stream.clients.topics import ensure_topics, partitions_of
from stream.cli.worker import worker_topics
from stream.core.timeutil import rfc3339_ms
from stream.events.internal import TICK_KEY, encode_tick
from stream.worker.table_keys import backlog_key
from stream.worker.settings import load_worker_settings


def _topic_for(line: bytes, by_type: dict[str, str], fallback: str) -> tuple[str, bytes | None]:
    """The input topic for a line, by its ``type``, and its customer key. Lines that are
    not JSON objects still go out (to ``fallback``): the worker dead-letters them."""
    try:
        fields = orjson.loads(line)
    except orjson.JSONDecodeError:
        return fallback, None
    if not isinstance(fields, dict):
        return fallback, None
    customer = fields.get("customer_id")
    key = customer.encode() if isinstance(customer, str) else None
    return by_type.get(fields.get("type"), fallback), key


@click.command("replay")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--until", type=INSTANT, help="Afterwards, advance every partition's clock to this instant.")
@click.option("--wait", is_flag=True, help="Return once the worker has processed everything.")
@click.option("--rate", type=float, help="Events per second (default: as fast as possible).")
@click.option("--key", "keying", type=click.Choice(["customer", "none"]), default="customer", show_default=True, help="Message key of the published events.")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds --until/--wait wait for the worker.")
@click.pass_obj
def replay(context: CliContext, files: tuple[str, ...], until: int | None, wait: bool, rate: float | None, keying: str, timeout: float) -> None:
    """Publish JSON-lines FILES to the order/cart/email-open/erasure topics by each event's type."""
    settings = load_worker_settings(context.config_file)
    kafka = context.kafka_settings()
    topics = settings.topics
    by_type = {"order": topics.orders, "cart": topics.carts, "email_open": topics.email_opens, "erasure": topics.erasures}
    ensure_topics(kafka, worker_topics(settings))

    lines = list(iter_lines(files))
    producer = KafkaProducer(acks="all", linger_ms=20, client_id="segments-replay", **kafka.kafka_python_kwargs())
    started = time.monotonic()
    stamped = 0
    with click.progressbar(lines, label=f"Publishing {len(lines)} events", file=click.get_text_stream("stderr")) as bar:
        for sent, line in enumerate(bar, start=1):
            topic, key = _topic_for(line, by_type, topics.orders)
            # Strictly increasing record timestamps: the worker breaks ties between equal
            # occurred_at instants by arrival, and these carry the file's order across
            # topics and partitions.
            stamped = max(time.time_ns() // 1_000_000, stamped + 1)
            producer.send(topic, key=key if keying == "customer" else None, value=line, timestamp_ms=stamped)
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    producer.flush()
    click.echo(f"Published {len(lines)} events in {time.monotonic() - started:.1f}s.", err=True)
    if until is None and not wait:
        producer.close()
        return

    # The worker must have taken in everything before the final tick, or the tick
    # would overtake events and make them late.
    wait_for_worker(kafka, settings.app_id, topics.inputs(), timeout, "the worker's intake")
    if until is not None:
        for partition in partitions_of(kafka, topics.events):
            producer.send(topics.events, key=TICK_KEY, value=encode_tick(until), partition=partition)
        producer.flush()
        click.echo(f"Advanced every partition's clock to {rfc3339_ms(until)}.", err=True)
    producer.close()
    if wait:
        wait_for_worker(kafka, settings.app_id, [topics.events], timeout, "the worker")
        if wait_for_partitions_to_settle(kafka, settings.app_id, timeout):
            # The last of those batches, committed.
            wait_for_worker(kafka, settings.app_id, [topics.events], timeout, "the worker")
        click.echo("The worker has processed everything.", err=True)


def wait_for_partitions_to_settle(kafka, app_id: str, timeout: float) -> bool:
    """Wait until every partition has moved its stored customers to new rules after a
    change of them, and fired the timers a tick left for later batches
    (``timers_per_batch``): part of "processed everything", their changes come from
    there. Whether there was anything to wait for."""
    deadline = time.monotonic() + timeout
    waited = False
    told: set[str] = set()
    with ChangelogReader(kafka, clocks_changelog(app_id)) as reader:
        while True:
            table = reader.read_to_end()
            _, records = records_in(table)
            sweeping = sorted(partition for partition, record in records.items() if not record.swept)
            behind = sorted(partition for (partition, key) in table if key == backlog_key(partition))
            if not sweeping and not behind:
                return waited
            waited = True
            if sweeping and "sweep" not in told:
                versions = ", ".join(sorted({records[partition].version for partition in sweeping}))
                click.echo(f"Partition(s) {', '.join(map(str, sweeping))} are moving their customers to rules "
                           f"{versions}; waiting for that too.", err=True)
                told.add("sweep")
            if behind and "behind" not in told:
                click.echo(f"Partition(s) {', '.join(map(str, behind))} have more customers due than a batch "
                           "re-evaluates (timers_per_batch); waiting for the next batches too.", err=True)
                told.add("behind")
            if time.monotonic() > deadline:
                raise click.ClickException(
                    f"partition(s) {', '.join(map(str, sweeping or behind))} still "
                    + ("moving their customers to new rules (segments_rules_sweep_pending)" if sweeping else
                       "re-evaluating due customers (segments_due_timers_behind_seconds)")
                    + f" after {timeout:.0f}s: is `segments worker` running?"
                )
            time.sleep(0.5)


def wait_for_worker(kafka, group: str, topics: list[str], timeout: float, who: str) -> None:
    """Until ``group`` has consumed ``topics`` to their current ends (ClickException after
    ``timeout`` seconds, naming ``who``)."""
    targets = end_offsets(kafka, topics)
    if not wait_until_consumed(kafka, group, targets, timeout=timeout):
        raise click.ClickException(f"{who} did not catch up within {timeout:.0f}s: is `segments worker` running?")
