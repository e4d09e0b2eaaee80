"""Running `segments worker` and the CLI as real processes, each test in its own namespace
(app id, topics, data folder), against the session's real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from stream.broker.local import free_port
from stream.demo.cdnow import cdnow_orders, time_ordered, write_jsonl
from stream.demo.generate import generate_behaviour
from tests.integration.kafka_helpers import read_to_end

SEGMENTS = str(Path(sys.executable).with_name("segments"))


class WorkerNamespace:
    """A config file naming unique topics, group and state folder for one test."""

    def __init__(self, bootstrap: str, prefix: str, tmp_path: Path, *, clock: str = "event",
                 guarantee: str = "at_least_once", partitions: int = 4, worker_settings: str = "",
                 worker_command: list[str] | None = None, worker_env: dict[str, str] | None = None) -> None:
        """``worker_command``: what runs the workers instead of the `segments` command
        (taking the same arguments), with ``worker_env`` added to their environment."""
        self.bootstrap = bootstrap
        self.worker_command = worker_command or [SEGMENTS]
        self.worker_env = worker_env or {}
        self.prefix = prefix
        self.tmp_path = tmp_path
        self.topics = {
            "orders": f"{prefix}-orders", "carts": f"{prefix}-carts", "email_opens": f"{prefix}-email-opens",
            "erasures": f"{prefix}-erasures", "events": f"{prefix}-events", "segment_changes": f"{prefix}-changes",
            "customer_profiles": f"{prefix}-profiles", "dead_letter": f"{prefix}-dlq",
        }
        self.web_port = free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.config = tmp_path / f"{prefix}.toml"
        topic_lines = "\n".join(f'{key} = "{value}"' for key, value in self.topics.items())
        self.config.write_text(
            f'[worker]\napp_id = "{prefix}"\ndata_dir = "{tmp_path / "worker-data"}"\n'
            f'clock = "{clock}"\nprocessing_guarantee = "{guarantee}"\npartitions = {partitions}\n'
            # A SIGKILLed worker's partitions move after 10 s instead of 45.
            "session_timeout_seconds = 10\n"
            f"web_port = {self.web_port}\n{worker_settings}\n\n[worker.topics]\n{topic_lines}\n"
        )
        self.worker: subprocess.Popen | None = None
        self.extra_workers: list[subprocess.Popen] = []
        self.worker_log = tmp_path / f"{prefix}-worker.log"

    def env(self) -> dict[str, str]:
        return {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap}

    def cli(self, *args: str, timeout: float = 600, check: bool = True, config: Path | None = None) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            [SEGMENTS, "--config", str(config or self.config), *args],
            env=self.env(), capture_output=True, text=True, timeout=timeout,
        )
        if check and completed.returncode != 0:
            raise AssertionError(f"segments {' '.join(args)} failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
        return completed

    def start_worker(self, *extra: str, ready_timeout: float = 90) -> None:
        self.worker = self._start(self.worker_log, extra, ready_timeout, self._readies)
        self._readies += 1

    def start_extra_worker(self, label: str, ready_timeout: float = 90) -> tuple[subprocess.Popen, str]:
        """Another worker of the same app (group), with its own state folder and web
        port; returns the process and its web address."""
        log_path = self.tmp_path / f"{self.prefix}-{label}-worker.log"
        port = free_port()
        extra = ("--data-dir", str(self.tmp_path / f"{label}-data"), "--web-port", str(port))
        process = self._start(log_path, extra, ready_timeout, 0)
        self.extra_workers.append(process)
        return process, f"http://127.0.0.1:{port}"

    def _start(self, log_path: Path, extra: tuple[str, ...], ready_timeout: float, readies_before: int) -> subprocess.Popen:
        log = log_path.open("ab")
        process = subprocess.Popen(
            [*self.worker_command, "--config", str(self.config), "worker", "-l", "info", *extra],
            env={**self.env(), **self.worker_env}, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"worker exited ({process.returncode}):\n{self.log_tail(path=log_path)}")
            if log_path.read_text(errors="replace").count("[^Worker]: Ready") > readies_before:
                return process
            time.sleep(0.3)
        raise AssertionError(f"worker not ready within {ready_timeout}s:\n{self.log_tail(path=log_path)}")

    _readies = 0

    def stop_worker(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        assert self.worker is not None
        self.worker.send_signal(sig)
        code = self.worker.wait(timeout=timeout)
        self.worker = None
        return code

    def wait_for_log(self, text: str, timeout: float, count: int = 1) -> None:
        """Return once the first worker's log contains ``text`` (``count`` times); fail if
        it exits first."""
        deadline = time.monotonic() + timeout
        while self.worker_log.read_text(errors="replace").count(text) < count:
            if self.worker is not None and self.worker.poll() is not None:
                raise AssertionError(f"worker exited ({self.worker.returncode}) before logging {text!r}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} in the worker's log within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.1)

    def overtaken(self) -> str:
        """The worker's reports of events overtaken in the intake's merge (which make
        its results differ from `segments batch`): for assertion messages."""
        lines = [line for line in self.worker_log.read_text(errors="replace").splitlines() if " overtaken: " in line]
        return "events overtaken in the intake's merge:\n" + "\n".join(lines) if lines else "no event overtaken"

    def log_tail(self, lines: int = 60, path: Path | None = None) -> str:
        try:
            return "\n".join((path or self.worker_log).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def read_topic(self, name: str, *, isolation_level: str = "read_uncommitted", idle: float = 2.0) -> list[Any]:
        return read_to_end(self.bootstrap, self.topics[name], isolation_level=isolation_level, idle=idle)

    def latest_profiles(self) -> dict[str, bytes | None]:
        """customer-profiles as compaction leaves it: the latest value per customer (None:
        a tombstone)."""
        return {record.key.decode(): record.value for record in self.read_topic("customer_profiles")}

    def changes_by_customer(self, **kwargs: Any) -> dict[str, list[dict]]:
        by_customer: dict[str, list[dict]] = {}
        for record in self.read_topic("segment_changes", **kwargs):
            change = orjson.loads(record.value)
            change.pop("emitted_at")
            by_customer.setdefault(change["customer_id"], []).append(change)
        return by_customer

    def first_changes_by_customer(self) -> dict[str, list[dict]]:
        """``changes_by_customer`` with redeliveries left out: each change id's first
        occurrence, in topic order (what at-least-once must match, change for change)."""
        first: dict[str, list[dict]] = {}
        for customer, changes in self.changes_by_customer().items():
            ids: set[str] = set()
            first[customer] = [c for c in changes if not (c["change_id"] in ids or ids.add(c["change_id"]))]
        return first

    def close(self) -> None:
        for process in [self.worker, *self.extra_workers]:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=30)


def history_files(
    tmp_path: Path, customers: int, *cuts: tuple[int, int], erasure_share: float = 0.0,
) -> tuple[Path, list[Path]]:
    """The first ``customers`` CDNOW customers' orders in time order (with erasure requests
    for ``erasure_share`` of them): the whole history as ``all.jsonl``, and its parts
    (``part0.jsonl``, ...), split where each cut (numerator, denominator) falls: (1, 2)
    at ``len(events) // 2``. For replaying a history in steps."""
    events = generate_behaviour(
        time_ordered(list(cdnow_orders(limit_customers=customers))),
        customer_share=0, late_share=0, redelivery_share=0, erasure_share=erasure_share,
    )
    history = tmp_path / "all.jsonl"
    write_jsonl(events, history)
    bounds = [0, *(len(events) * numerator // denominator for numerator, denominator in cuts), len(events)]
    parts = [tmp_path / f"part{index}.jsonl" for index in range(len(bounds) - 1)]
    for path, start, end in zip(parts, bounds, bounds[1:]):
        write_jsonl(events[start:end], path)
    return history, parts


def assert_erased_customers_have_no_profile(ns: WorkerNamespace, batch_changes: dict[str, list[dict]]) -> None:
    """An erased customer's latest record on customer-profiles is a tombstone, unless they
    came back after the erasure; either way the snapshot matched the batch's above."""
    erased = {customer for customer, changes in batch_changes.items() if any(c["kind"] == "erasure" for c in changes)}
    still_erased = {customer for customer in erased if batch_changes[customer][-1]["kind"] == "erasure"}
    came_back = erased - still_erased
    assert still_erased and came_back
    profiles = ns.latest_profiles()
    assert {customer for customer in still_erased if profiles.get(customer, b"") is not None} == set()
    assert {customer for customer in came_back if profiles.get(customer) is None} == set()


def overview(web_url: str) -> dict:
    """A worker's /api/overview: its partitions' clocks, census (customers in its tables), ..."""
    with urllib.request.urlopen(f"{web_url}/api/overview", timeout=10) as response:
        return orjson.loads(response.read())


def batch_results(history: Path, until: str, tmp_path: Path, *options: str) -> tuple[list[bytes], dict[str, list[dict]]]:
    """`segments batch` of ``history`` (with ``options``): its profiles, and its changes by customer."""
    profiles, changes = tmp_path / "batch-profiles.jsonl", tmp_path / "batch-changes.jsonl"
    subprocess.run(
        [SEGMENTS, "batch", str(history), "--until", until, "--out", str(profiles), "--changes", str(changes), *options],
        check=True, capture_output=True, timeout=900,
    )
    by_customer: dict[str, list[dict]] = {}
    for line in changes.read_bytes().splitlines():
        change = orjson.loads(line)
        by_customer.setdefault(change["customer_id"], []).append(change)
    return profiles.read_bytes().splitlines(), by_customer
