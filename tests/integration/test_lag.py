"""`segments lag` as a real process against the real broker: STOP, STALL and OK with
kafka-python consumers in their own processes, a --watch stream, and a real worker whose
lag rises while it is stopped and drains when it restarts."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from stream.demo.cdnow import cdnow_orders, time_ordered, write_jsonl
from tests.integration.kafka_helpers import create_topic
from tests.integration.worker_harness import SEGMENTS, WorkerNamespace

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]


def lag(bootstrap: str, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [SEGMENTS, *(["--config", str(config)] if config else []), "lag", *args]
    return subprocess.run(
        command, env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap},
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )


def lag_json(bootstrap: str, *args: str, config: Path | None = None) -> tuple[int, dict[str, Any]]:
    completed = lag(bootstrap, "--json", *args, config=config)
    assert completed.stdout.strip(), f"no output ({completed.returncode}):\n{completed.stderr[-3000:]}"
    return completed.returncode, orjson.loads(completed.stdout)


def produce(bootstrap: str, topic: str, count: int, partitions: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for index in range(count):
            producer.send(topic, b"event-%d" % index, partition=index % partitions)
        producer.flush()
    finally:
        producer.close()


@contextmanager
def producing(bootstrap: str, topic: str, partitions: int) -> Iterator[None]:
    """Keep producing to every partition of ``topic`` while the block runs."""
    stop = threading.Event()

    def run() -> None:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5)
        index = 0
        while not stop.is_set():
            producer.send(topic, b"more-%d" % index, partition=index % partitions)
            index += 1
            stop.wait(0.05)
        producer.flush()
        producer.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def consumer_process(bootstrap: str, topic: str, group: str, *mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.apps.lag_consumer", bootstrap, topic, group, *mode],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def start_holder(bootstrap: str, topic: str, group: str, offset: int, attempts: int = 3, seconds: float = 60) -> subprocess.Popen[str]:
    """A consumer process that holds ``offset`` once it says so. kafka-python's group join
    hung once in CI (no "holding" line for 600 s); a holder that does not get there within
    a minute is killed and another started, and the stderr of those that failed is shown
    if none gets there."""
    failed = []
    for _ in range(attempts):
        holder = consumer_process(bootstrap, topic, group, "hold", str(offset))
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: lines.put(holder.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
        try:
            if lines.get(timeout=seconds).strip() == "holding":
                return holder
        except queue.Empty:
            pass
        holder.kill()
        _, err = holder.communicate(timeout=30)
        failed.append(err[-3000:])
    pytest.fail("no holder got to hold its offset:\n" + "\n---\n".join(failed))


def drain_and_exit(bootstrap: str, topic: str, group: str) -> None:
    process = consumer_process(bootstrap, topic, group, "drain")
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0 and "drained" in out, err[-3000:]


def partitions_of(document: dict[str, Any], group: str) -> list[dict[str, Any]]:
    [found] = [g for g in document["groups"] if g["group"] == group]
    return found["partitions"]


def worker_lags(ns: WorkerNamespace, topics: set[str], timeout: float = 30) -> dict[tuple[str, str], float]:
    """The worker's kafka_consumergroup_lag for every partition of ``topics``, once it
    exports one for each (the broker's offsets of partitions the worker never committed
    come with its next refresh)."""
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"{ns.web_url}/metrics", timeout=10) as response:
            text = response.read().decode()
        lags = {
            (sample.labels["topic"], sample.labels["partition"]): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples
            if sample.name == "kafka_consumergroup_lag" and sample.labels["topic"] in topics
        }
        if len(lags) == 4 * len(topics) or time.monotonic() > deadline:
            return lags
        time.sleep(0.5)


def test_stop_when_the_consumer_exited_and_producing_continues(kafka_bootstrap: str, unique_name) -> None:
    topic, group = unique_name("in"), unique_name("group")
    create_topic(kafka_bootstrap, topic, partitions=2)
    produce(kafka_bootstrap, topic, 20, partitions=2)
    drain_and_exit(kafka_bootstrap, topic, group)

    with producing(kafka_bootstrap, topic, partitions=2):
        # Both STOP reasons: nobody owns the partitions, and (once 2 s have passed) no commit.
        deadline = time.monotonic() + 60
        while True:
            code, document = lag_json(kafka_bootstrap, "--group", group, "--stop-after", "2", "--samples", "2", "--interval", "0.5")
            partitions = partitions_of(document, group)
            if all((p["seconds_since_commit"] or 0) > 2 and (p["lag"] or 0) > 0 for p in partitions) or time.monotonic() > deadline:
                break
    assert code == 2 and document["status"] == "STOP" and document["exit_code"] == 2
    [summary] = document["groups"]
    assert summary["status"] == "STOP" and summary["state"] == "Empty" and summary["members"] == 0
    assert summary["commit_times"]["source"] == "commit-log"
    assert sorted(p["partition"] for p in partitions) == [0, 1]
    for partition in partitions:
        assert partition["committed"] == 10  # what the consumer committed before it exited
        assert partition["lag"] == partition["end"] - 10 > 0
        assert partition["status"] == "STOP" and partition["owner"] is None
        assert "no live member" in partition["reason"] and "no commit for" in partition["reason"]
        assert partition["commit_time_source"] == "commit-log" and not partition["seconds_since_commit_at_least"]


def test_stall_when_a_live_member_keeps_committing_the_same_offset(kafka_bootstrap: str, unique_name) -> None:
    topic, group = unique_name("in"), unique_name("group")
    create_topic(kafka_bootstrap, topic, partitions=1)
    produce(kafka_bootstrap, topic, 30, partitions=1)
    holder = start_holder(kafka_bootstrap, topic, group, 5)
    try:
        code, document = lag_json(kafka_bootstrap, "--group", group, "--samples", "3", "--interval", "1")
        [partition] = partitions_of(document, group)
        assert code == 2 and document["status"] == "STALL"
        assert partition["status"] == "STALL" and partition["lags"] == [25, 25, 25]
        assert partition["owner"]["client_id"] == "lag-test-hold"
        # Committed recently (it re-commits all the time): read from __consumer_offsets.
        assert partition["commit_time_source"] == "commit-log" and partition["seconds_since_commit"] < 300

        text = lag(kafka_bootstrap, "--group", group, "--samples", "2", "--interval", "0.5")
        assert text.returncode == 2
        assert "STALL" in text.stdout and "lag-test-hold@" in text.stdout
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_ok_and_exit_code_zero_when_caught_up(kafka_bootstrap: str, unique_name) -> None:
    topic, group = unique_name("in"), unique_name("group")
    create_topic(kafka_bootstrap, topic, partitions=3)
    produce(kafka_bootstrap, topic, 30, partitions=3)
    drain_and_exit(kafka_bootstrap, topic, group)

    code, document = lag_json(kafka_bootstrap, "--group", group)
    assert code == 0 and document["status"] == "OK"
    assert [(p["partition"], p["committed"], p["end"], p["lag"], p["status"]) for p in partitions_of(document, group)] == [
        (0, 10, 10, 0, "OK"), (1, 10, 10, 0, "OK"), (2, 10, 10, 0, "OK"),
    ]
    text = lag(kafka_bootstrap, "--group", group, "--samples", "1")
    assert text.returncode == 0, text.stderr
    for header in ("group", "topic", "partition", "committed", "end", "lag", "owner", "status"):
        assert header in text.stdout
    assert f"{group}: OK" in text.stdout


def test_an_unknown_group_is_err(kafka_bootstrap: str, unique_name) -> None:
    code, document = lag_json(kafka_bootstrap, "--group", unique_name("never-ran"), "--samples", "1")
    assert code == 2 and document["status"] == "ERR"


def test_watch_prints_one_document_per_evaluation_over_a_sliding_window(kafka_bootstrap: str, unique_name) -> None:
    topic, group = unique_name("in"), unique_name("group")
    create_topic(kafka_bootstrap, topic, partitions=1)
    produce(kafka_bootstrap, topic, 5, partitions=1)
    drain_and_exit(kafka_bootstrap, topic, group)
    watch = subprocess.Popen(
        [SEGMENTS, "lag", "--group", group, "--watch", "--json", "--interval", "0.2", "--window", "3"],
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert watch.stdout is not None
        documents = [orjson.loads(watch.stdout.readline()) for _ in range(5)]
    finally:
        watch.send_signal(signal.SIGINT)
        _, err = watch.communicate(timeout=60)
    assert [document["groups"][0]["samples"] for document in documents] == [1, 2, 3, 3, 3]
    assert all(document["status"] == "OK" for document in documents)
    assert watch.returncode == 0, err[-3000:]


def test_ctrl_c_ends_the_watch_even_when_a_kafka_call_hangs(kafka_bootstrap: str, unique_name) -> None:
    """Seen once on a loaded machine: the watch still running 60 s after Ctrl-C. A Kafka
    call that does not return (here: made to hang) gets STOP_GRACE_SECONDS (10)."""
    watch = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "integration" / "apps" / "hanging_lag.py"),
         "lag", "--group", unique_name("group"), "--watch", "--json", "--interval", "0.2"],
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert watch.stdout is not None
        for _ in range(2):
            orjson.loads(watch.stdout.readline())
        time.sleep(1)  # the third sample hangs
        watch.send_signal(signal.SIGINT)
        _, err = watch.communicate(timeout=30)
    finally:
        if watch.poll() is None:
            watch.kill()
    assert "a Kafka call did not return within 10 s of the stop; exiting" in err


def test_worker_lag_rises_while_it_is_stopped_and_drains_after_restart(kafka_bootstrap: str, unique_name, tmp_path: Path) -> None:
    ns = WorkerNamespace(kafka_bootstrap, unique_name("lag"), tmp_path)
    orders = time_ordered(list(cdnow_orders(limit_customers=60)))
    batches = [orders[:60], orders[60:120], orders[120:]]
    files = []
    for index, batch in enumerate(batches):
        files.append(tmp_path / f"batch-{index}.jsonl")
        write_jsonl(batch, files[-1])
    try:
        ns.start_worker()
        ns.cli("replay", str(files[0]), "--wait", "--timeout", "240")
        # No --group: the engine's groups, from the config file (the worker's app id).
        code, document = lag_json(kafka_bootstrap, config=ns.config)
        assert [g["group"] for g in document["groups"]] == [ns.prefix]
        assert code == 0 and document["status"] == "OK", document
        # faust's assignment decodes: the worker owns its partitions.
        owners = {p["owner"]["client_id"] for p in partitions_of(document, ns.prefix) if p["owner"]}
        assert owners and all(owner.startswith("faust") for owner in owners)
        # The worker's own gauge agrees, for the topics it never committed too (nothing
        # came on carts or email opens): from the broker's log start, not left out.
        assert worker_lags(ns, {ns.topics["carts"], ns.topics["email_opens"]}) == {
            (topic, partition): 0 for topic in (ns.topics["carts"], ns.topics["email_opens"]) for partition in map(str, range(4))
        }

        assert ns.stop_worker() == 0
        ns.cli("replay", str(files[1]))
        code, stopped = lag_json(kafka_bootstrap, config=ns.config)
        # Carts arrive too: the worker never committed that topic (it had nothing there),
        # so its partitions have lag counted from the log start.
        carts = [
            {"event_id": f"cart-{n}", "type": "cart", "customer_id": order["customer_id"], "occurred_at": order["occurred_at"],
             "cart_id": f"c-{n}", "action": "add", "cart_total": 12.5}
            for n, order in enumerate(batches[2][:7])
        ]
        write_jsonl(carts, tmp_path / "carts.jsonl")
        ns.cli("replay", str(files[2]), str(tmp_path / "carts.jsonl"))
        code_later, later = lag_json(kafka_bootstrap, config=ns.config)
        for status_code, doc in [(code, stopped), (code_later, later)]:
            [group] = doc["groups"]
            assert status_code == 2 and group["status"] == "STOP" and group["members"] == 0, doc
            lagging = [p for p in group["partitions"] if (p["lag"] or 0) > 0]
            assert lagging and all(p["status"] == "STOP" for p in lagging), lagging
        assert {p["topic"] for p in partitions_of(stopped, ns.prefix) if (p["lag"] or 0) > 0} == {ns.topics["orders"]}
        assert stopped["groups"][0]["lag"] == len(batches[1])
        lagging_carts = [p for p in partitions_of(later, ns.prefix) if p["topic"] == ns.topics["carts"] and p["lag"]]
        assert lagging_carts and all(p["committed"] is None and p["unread_from"] == 0 for p in lagging_carts), lagging_carts
        assert sum(p["lag"] for p in lagging_carts) == len(carts)
        assert later["groups"][0]["lag"] == stopped["groups"][0]["lag"] + len(batches[2]) + len(carts)

        ns.start_worker()
        deadline = time.monotonic() + 240
        while True:
            # One sample: a running consumer with lag is OK ("consuming") until it drains.
            code, document = lag_json(kafka_bootstrap, "--samples", "1", config=ns.config)
            if document["groups"][0]["lag"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert document["groups"][0]["lag"] == 0, document
        code, document = lag_json(kafka_bootstrap, config=ns.config)
        [group] = document["groups"]
        assert code == 0 and group["status"] == "OK" and group["lag"] == 0 and group["members"] == 1, document
        committed = {(p["topic"], p["partition"]): p["committed"] for p in group["partitions"] if p["topic"] == ns.topics["orders"]}
        assert sum(committed.values()) == len(orders)
        assert sum(p["committed"] or 0 for p in group["partitions"] if p["topic"] == ns.topics["carts"]) == len(carts)
    finally:
        ns.close()
