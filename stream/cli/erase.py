"""``segments erase``: publish erasure requests (README: "Erasing a customer")."""

from __future__ import annotations

import time
import uuid

import click
import orjson
from kafka import KafkaProducer

from stream.cli.context import CliContext
from stream.cli.history import INSTANT, iter_lines
from stream.cli.replay import wait_for_worker
from stream.cli.worker import worker_topics
from stream.clients.progress import end_offsets, records_from
from stream.clients.topics import ensure_topics
from stream.core.timeutil import rfc3339_ms
from stream.events import Rejection, decode_event
from stream.worker.settings import load_worker_settings


def erasure_requests(customer_ids: list[str], at_ms: int) -> list[dict]:
    """One request per distinct customer id, in the given order; raises ``click.BadParameter``
    naming the first id the worker would refuse (it would dead-letter the request)."""
    requests = []
    for customer_id in dict.fromkeys(customer_ids):
        request = {"event_id": f"erase-{uuid.uuid4().hex}", "type": "erasure", "customer_id": customer_id,
                   "occurred_at": rfc3339_ms(at_ms)}
        decoded = decode_event(orjson.dumps(request))
        if isinstance(decoded, Rejection):
            raise click.BadParameter(f"customer id {customer_id[:40]!r}: {decoded.detail}", param_hint="CUSTOMER_IDS")
        requests.append(request)
    return requests


@click.command("erase")
@click.argument("customer_ids", nargs=-1)
@click.option("--file", "id_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A file of customer ids, one per line (repeatable; with or instead of arguments).")
@click.option("--at", type=INSTANT, help="When the requests were accepted (default: now). Like any event, a request "
              "moves its partition's clock: against a --clock event replay, an instant of that history.")
@click.option("--wait", is_flag=True, help="Return once the worker has processed them, and check that each "
              "request's erasure record is on segment-changes (exit 1 naming the customers without one).")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds --wait waits for the worker.")
@click.pass_obj
def erase(context: CliContext, customer_ids: tuple[str, ...], id_files: tuple[str, ...], at: int | None, wait: bool,
          timeout: float) -> None:
    """Erase customers (GDPR Art. 17): publish an erasure request for each to the erasures
    topic. Prints each customer id with its request id, the `cause.event_id` of the
    `kind: erasure` record the worker emits for it on segment-changes."""
    ids = [*customer_ids, *(line.decode("utf-8").strip() for line in iter_lines(id_files))]
    if not ids:
        raise click.UsageError("name at least one customer id, as an argument or in --file")
    requests = erasure_requests(ids, at if at is not None else time.time_ns() // 1_000_000)
    settings = load_worker_settings(context.config_file)
    kafka = context.kafka_settings()
    topic = settings.topics.erasures
    ensure_topics(kafka, worker_topics(settings))
    # Where the confirmations (records of kind erasure) will be looked for with --wait.
    changes_before = end_offsets(kafka, [settings.topics.segment_changes]) if wait else {}
    producer = KafkaProducer(acks="all", client_id="segments-erase", **kafka.kafka_python_kwargs())
    try:
        for request in requests:
            producer.send(topic, key=request["customer_id"].encode(), value=orjson.dumps(request))
        producer.flush()
    finally:
        producer.close()
    for request in requests:
        click.echo(f"{request['customer_id']}\t{request['event_id']}")
    click.echo(f"Published {len(requests)} erasure request(s) to {topic}.", err=True)
    if wait:
        wait_for_worker(kafka, settings.app_id, [topic], timeout, "the worker's intake")
        wait_for_worker(kafka, settings.app_id, [settings.topics.events], timeout, "the worker")
        unconfirmed = {request["event_id"]: request["customer_id"] for request in requests}
        for record in records_from(kafka, changes_before):
            change = orjson.loads(record.value) if record.value else {}
            if change.get("kind") == "erasure":
                unconfirmed.pop(change.get("cause", {}).get("event_id"), None)
        if unconfirmed:
            raise click.ClickException(
                f"no erasure record on {settings.topics.segment_changes} for {', '.join(sorted(unconfirmed.values()))}: "
                "a request that occurred at or before an erasure already made of its customer erases nothing more"
            )
        click.echo(f"The worker has erased them: {len(requests)} erasure record(s) on {settings.topics.segment_changes}.", err=True)
