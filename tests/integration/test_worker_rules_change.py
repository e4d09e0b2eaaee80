"""A worker restarted with new rules moves every stored customer to them, as `segments
batch --rules-change` does; rules its stored state cannot be carried over to stop it."""

from __future__ import annotations

import signal
from pathlib import Path

import orjson
import pytest

from stream.rules import Rules, render_rules_toml
from tests.integration.rules_history import CHANGE_AT, NEW_RULES, NEW_RULES_FIELDS, UNTIL, history_and_new_rules
from tests.integration.worker_harness import WorkerNamespace, batch_results, overview

pytestmark = pytest.mark.integration


@pytest.mark.timeout(600)
@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_a_worker_restarted_with_new_rules_agrees_with_batch(
    kafka_bootstrap: str, unique_name, tmp_path: Path, guarantee: str,
) -> None:
    history, before, after, new_rules = history_and_new_rules(tmp_path)
    # Few customers per batch, so the sweep takes many batches, between the events, and
    # outlasts the kill below by seconds: about 100 batches of one customer under
    # at-least-once (3 s here; with 3 customers a batch it once ended before the kill),
    # 10 batches of 10 under exactly-once, where a batch of the sweep waits for the
    # previous one's transaction (one commit interval each).
    sweep_customers = 1 if guarantee == "at_least_once" else 10
    ns = WorkerNamespace(
        kafka_bootstrap, unique_name("rules"), tmp_path, guarantee=guarantee,
        worker_settings=f"rules_sweep_customers = {sweep_customers}",
    )
    try:
        ns.start_worker()
        ns.cli("replay", str(before), "--until", CHANGE_AT, "--wait", "--timeout", "240")
        ns.stop_worker()
        # The pre-flight check reads the partitions' rules from Kafka.
        checked = ns.cli("rules", "check", str(new_rules), "--worker").stdout
        assert f"partition(s) 0, 1, 2, 3 run under {Rules().version}; started with {new_rules}" in checked

        ns.start_worker("--rules", str(new_rules))
        # Killed mid-sweep, the worker rebuilds its state from the changelogs and goes on
        # where the sweep stood: no change lost, none doubled under exactly-once.
        ns.wait_for_log("moving its stored customers to them", timeout=60)
        assert ns.stop_worker(signal.SIGKILL) == -signal.SIGKILL
        assert ns.worker_log.read_text().count("every stored customer is under rules") < 4
        ns.start_worker("--rules", str(new_rules))
        # --wait waits for the sweep too (under exactly-once a batch of it each commit
        # interval, so it outlasts the replayed events).
        ns.cli("replay", str(after), "--until", UNTIL, "--wait", "--timeout", "240")
        log = ns.worker_log.read_text()
        assert log.count(f"every stored customer is under rules {NEW_RULES.version}") == 4, ns.log_tail()
        assert "rebuilding local state from the changelogs" in log
        changeovers = [line.split("]", 3)[-1] for line in log.splitlines() if " replace " in line]
        assert {line.split(":", 1)[1] for line in changeovers} == {
            f" rules {NEW_RULES.version} replace {Rules().version} from {CHANGE_AT[:-1]}.000Z on; moving its stored customers to them "
        }, changeovers
        partitions = overview(ns.web_url)["clocks"]
        assert [(p["rules_version"], p["rules_previous"], p["rules_swept"]) for p in partitions] == [
            (NEW_RULES.version, Rules().version, True)
        ] * 4

        snapshot = tmp_path / "snapshot.jsonl"
        refused = ns.cli("snapshot", "--out", str(snapshot), check=False)  # with the shipped rules
        assert refused.returncode == 1
        assert f"runs under rules {NEW_RULES.version}, not the shipped rules" in refused.stderr
        ns.cli("snapshot", "--out", str(snapshot), "--rules", str(new_rules))
        batch_profiles, batch_changes = batch_results(
            history, UNTIL, tmp_path, "--rules-change", f"{CHANGE_AT}={new_rules}",
        )
        assert snapshot.read_bytes().splitlines() == batch_profiles
        assert {orjson.loads(p)["rules_version"] for p in batch_profiles} == {NEW_RULES.version}
        if guarantee == "exactly_once":
            assert ns.changes_by_customer(isolation_level="read_committed") == batch_changes
        else:
            assert ns.first_changes_by_customer() == batch_changes
        by_rules = [c for changes in batch_changes.values() for c in changes if c["cause"] == {"kind": "rules"}]
        assert len(by_rules) > 20
        assert {(c["at"], c["rules_version"]) for c in by_rules} == {(CHANGE_AT[:-1] + ".000Z", NEW_RULES.version)}
        ns.stop_worker()
        if guarantee == "exactly_once":
            return  # the refusal below does not depend on the guarantee: once is enough

        # Another time zone: the stored email-open days cannot be carried over.
        berlin = tmp_path / "berlin.toml"
        berlin.write_text(render_rules_toml(Rules.model_validate({**NEW_RULES_FIELDS, "timezone": "Europe/Berlin"})))
        refused = ns.cli("rules", "check", str(berlin), "--worker", check=False)
        assert refused.returncode == 1
        assert "would stop on partition(s) 0, 1, 2, 3: timezone: the stored states count" in refused.stderr
        ns.start_worker("--rules", str(berlin))
        assert ns.worker is not None
        code = ns.worker.wait(timeout=60)
        ns.worker = None
        assert code != 0
        log = ns.worker_log.read_text()
        assert f"{berlin}: timezone: the stored states count email-open days in UTC" in log, ns.log_tail()

        # Nothing was lost: under the rules it ran with, the worker takes up where it was.
        ns.start_worker("--rules", str(new_rules))
        empty = tmp_path / "empty.jsonl"
        empty.write_bytes(b"")
        again = tmp_path / "again.jsonl"
        ns.cli("replay", str(empty), "--until", UNTIL, "--wait", "--timeout", "240")
        ns.cli("snapshot", "--out", str(again), "--rules", str(new_rules))
        assert again.read_bytes().splitlines() == batch_profiles
    finally:
        ns.close()
