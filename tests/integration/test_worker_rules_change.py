"""A worker restarted with new rules moves every stored customer to them, as `segments
batch --rules-change` does; rules its stored state cannot be carried over to stop it."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import orjson
import pytest

from stream.core.timeutil import parse_rfc3339_ms
from stream.demo.cdnow import cdnow_orders, time_ordered, write_jsonl
from stream.rules import Rules, render_rules_toml
from tests.integration.worker_harness import WorkerNamespace, batch_results, overview

pytestmark = pytest.mark.integration

CHANGE_AT = "1997-06-01T00:00:00Z"
UNTIL = "1998-07-01"
# New recency thresholds and a shorter order window: what a state carries over.
NEW_RULES_FIELDS = {"scores": {"recency": {"thresholds": [14, 45, 120, 300]}}, "window_days": 365}
NEW_RULES = Rules.model_validate(NEW_RULES_FIELDS)


def _files(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """The first 400 CDNOW customers' history, whole and split at CHANGE_AT, and the new
    rules file."""
    events = time_ordered(list(cdnow_orders(limit_customers=400)))
    change_at = parse_rfc3339_ms(CHANGE_AT)
    history, before, after = tmp_path / "all.jsonl", tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    write_jsonl(events, history)
    write_jsonl([e for e in events if parse_rfc3339_ms(e["occurred_at"]) <= change_at], before)
    write_jsonl([e for e in events if parse_rfc3339_ms(e["occurred_at"]) > change_at], after)
    new_rules = tmp_path / "new-rules.toml"
    new_rules.write_text(render_rules_toml(NEW_RULES))
    return history, before, after, new_rules


@pytest.mark.timeout(600)
@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_a_worker_restarted_with_new_rules_agrees_with_batch(
    kafka_bootstrap: str, unique_name, tmp_path: Path, guarantee: str,
) -> None:
    history, before, after, new_rules = _files(tmp_path)
    # A few customers per batch, so the sweep takes many batches, between the events.
    ns = WorkerNamespace(
        kafka_bootstrap, unique_name("rules"), tmp_path, guarantee=guarantee, worker_settings="rules_sweep_customers = 3",
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


@pytest.mark.timeout(600)
def test_a_rebalance_mid_sweep_loses_nothing_under_exactly_once(kafka_bootstrap: str, unique_name, tmp_path: Path) -> None:
    """A second worker joins while the first moves its customers to new rules: the
    partitions it takes over go on from where their sweep stood (the record is in the
    clocks table, restored from its changelog), and a read_committed reader sees each
    change once."""
    history, before, after, new_rules = _files(tmp_path)
    ns = WorkerNamespace(
        kafka_bootstrap, unique_name("rules-rebalance"), tmp_path, guarantee="exactly_once",
        worker_settings="rules_sweep_customers = 3",
    )
    try:
        ns.start_worker()
        ns.cli("replay", str(before), "--until", CHANGE_AT, "--wait", "--timeout", "240")
        ns.stop_worker()
        # Both workers read the rules from the config from here on.
        ns.config.write_text(ns.config.read_text().replace("[worker]\n", f'[worker]\nrules_file = "{new_rules}"\n', 1))
        ns.start_worker()
        ns.wait_for_log("moving its stored customers to them", timeout=60)
        ns.start_extra_worker("second")
        ns.cli("replay", str(after), "--until", UNTIL, "--wait", "--timeout", "240")
        second_log = tmp_path / f"{ns.prefix}-second-worker.log"

        def swept() -> int:
            return (ns.worker_log.read_text() + second_log.read_text()).count("every stored customer is under rules")

        deadline = time.monotonic() + 120
        while swept() < 4:
            assert time.monotonic() < deadline, ns.log_tail() + "\n" + ns.log_tail(path=second_log)
            time.sleep(0.5)
        assert "moving its stored customers to them" in second_log.read_text(), "the second worker took over no sweep"
        empty = tmp_path / "empty.jsonl"
        empty.write_bytes(b"")
        ns.cli("replay", str(empty), "--wait", "--timeout", "240")

        snapshot = tmp_path / "snapshot.jsonl"
        ns.cli("snapshot", "--out", str(snapshot))
        batch_profiles, batch_changes = batch_results(history, UNTIL, tmp_path, "--rules-change", f"{CHANGE_AT}={new_rules}")
        assert snapshot.read_bytes().splitlines() == batch_profiles
        assert ns.changes_by_customer(isolation_level="read_committed") == batch_changes
    finally:
        ns.close()


# Third rules, within what NEW_RULES' states keep (the same window).
THIRD_RULES = Rules.model_validate({"scores": {"recency": {"thresholds": [21, 60, 150, 330]}}, "window_days": 365})


@pytest.mark.timeout(600)
def test_rules_changed_again_before_the_sweep_is_done_pass_customers_through_the_rules_in_between(
    kafka_bootstrap: str, unique_name, tmp_path: Path,
) -> None:
    """The worker is killed while it moves its customers to new rules and restarted with
    third rules: the customers the first sweep had not reached pass through the rules in
    between, as `segments batch` with both changes computes."""
    history, before, after, new_rules = _files(tmp_path)
    third_rules = tmp_path / "third-rules.toml"
    third_rules.write_text(render_rules_toml(THIRD_RULES))
    ns = WorkerNamespace(
        kafka_bootstrap, unique_name("rules-again"), tmp_path, worker_settings="rules_sweep_customers = 1",
    )
    try:
        ns.start_worker()
        ns.cli("replay", str(before), "--until", CHANGE_AT, "--wait", "--timeout", "240")
        ns.stop_worker()
        ns.start_worker("--rules", str(new_rules))
        # Every partition has begun its sweep (its record is on its way to the changelog).
        ns.wait_for_log("moving its stored customers to them", timeout=60, count=4)
        time.sleep(0.5)
        assert ns.stop_worker(signal.SIGKILL) == -signal.SIGKILL

        checked = ns.cli("rules", "check", str(third_rules), "--worker").stdout
        assert f"partition(s) 0, 1, 2, 3 run under {NEW_RULES.version}; started with {third_rules}" in checked, checked
        # One customer a batch: the kill came before some partition's sweep was done.
        assert f"is still moving its customers to {NEW_RULES.version}; those not moved yet will pass through" in checked

        ns.start_worker("--rules", str(third_rules))
        ns.wait_for_log(f"pass first through {NEW_RULES.version} from {CHANGE_AT[:-1]}.000Z on", timeout=60)
        ns.cli("replay", str(after), "--until", UNTIL, "--wait", "--timeout", "240")
        partitions = overview(ns.web_url)["clocks"]
        assert [(p["rules_version"], p["rules_swept"], "rules_between" in p) for p in partitions] == [
            (THIRD_RULES.version, True, False)
        ] * 4

        snapshot = tmp_path / "snapshot.jsonl"
        ns.cli("snapshot", "--out", str(snapshot), "--rules", str(third_rules))
        batch_profiles, batch_changes = batch_results(
            history, UNTIL, tmp_path, "--rules-change", f"{CHANGE_AT}={new_rules}", "--rules-change", f"{CHANGE_AT}={third_rules}",
        )
        assert snapshot.read_bytes().splitlines() == batch_profiles
        assert ns.first_changes_by_customer() == batch_changes
        # Customers went through both: rules-caused changes under each, at the same instant.
        by_rules = {c["rules_version"] for changes in batch_changes.values() for c in changes if c["cause"] == {"kind": "rules"}}
        assert by_rules == {NEW_RULES.version, THIRD_RULES.version}
    finally:
        ns.close()
