"""Mid-sweep: a second worker joining while the first moves its customers to new rules,
and rules changed again before the sweep is done (split from
test_worker_rules_change.py so the test processes share these long tests)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from stream.cli.snapshot import clocks_changelog, records_in
from stream.clients import KafkaSettings
from stream.clients.changelog import ChangelogReader
from stream.rules import Rules, render_rules_toml
from tests.integration.rules_history import CHANGE_AT, NEW_RULES, UNTIL, history_and_new_rules
from tests.integration.worker_harness import WorkerNamespace, batch_results, overview

pytestmark = pytest.mark.integration


@pytest.mark.timeout(600)
def test_a_rebalance_mid_sweep_loses_nothing_under_exactly_once(kafka_bootstrap: str, unique_name, tmp_path: Path) -> None:
    """A second worker joins while the first moves its customers to new rules: the
    partitions it takes over go on from where their sweep stood (the record is in the
    clocks table, restored from its changelog), and a read_committed reader sees each
    change once."""
    history, before, after, new_rules = history_and_new_rules(tmp_path)
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
@pytest.mark.parametrize("shape", ["third rules", "rollback"])
def test_rules_changed_again_before_the_sweep_is_done_pass_customers_through_the_rules_in_between(
    kafka_bootstrap: str, unique_name, tmp_path: Path, shape: str,
) -> None:
    """The worker is killed while it moves its customers to new rules and restarted with
    other rules, third ones or (a rollback) those it ran before: the customers the first
    sweep had not reached pass through the rules in between, as `segments batch` with
    both changes computes."""
    history, before, after, new_rules_file = history_and_new_rules(tmp_path)
    third_rules_file = tmp_path / "third-rules.toml"
    third_rules_file.write_text(render_rules_toml(THIRD_RULES))
    if shape == "third rules":  # shipped -> NEW -> THIRD
        start, (first, first_file), (second, second_file) = (), (NEW_RULES, new_rules_file), (THIRD_RULES, third_rules_file)
    else:  # NEW -> THIRD -> NEW again, before THIRD's sweep is done
        start = ("--rules", str(new_rules_file))
        (first, first_file), (second, second_file) = (THIRD_RULES, third_rules_file), (NEW_RULES, new_rules_file)
    ns = WorkerNamespace(
        kafka_bootstrap, unique_name("rules-again"), tmp_path, worker_settings="rules_sweep_customers = 1",
    )
    try:
        ns.start_worker(*start)
        ns.cli("replay", str(before), "--until", CHANGE_AT, "--wait", "--timeout", "240")
        ns.stop_worker()
        ns.start_worker("--rules", str(first_file))
        # Killed once every partition's record of the change is on the changelog: the
        # sweeps (one customer a batch, about 3 s here) have only begun.
        ns.wait_for_log("moving its stored customers to them", timeout=60, count=4)
        with ChangelogReader(KafkaSettings(bootstrap_servers=kafka_bootstrap), clocks_changelog(ns.prefix)) as reader:
            deadline = time.monotonic() + 30
            while {record.version for record in records_in(reader.read_to_end())[1].values()} != {first.version}:
                assert time.monotonic() < deadline, ns.log_tail()
                time.sleep(0.05)
        assert ns.stop_worker(signal.SIGKILL) == -signal.SIGKILL

        checked = ns.cli("rules", "check", str(second_file), "--worker").stdout
        assert f"partition(s) 0, 1, 2, 3 run under {first.version}; started with {second_file}" in checked, checked
        # One customer a batch: the kill came before some partition's sweep was done.
        assert f"is still moving its customers to {first.version}; those not moved yet will pass through" in checked

        ns.start_worker("--rules", str(second_file))
        ns.wait_for_log(f"pass first through {first.version} from {CHANGE_AT[:-1]}.000Z on", timeout=60)
        ns.cli("replay", str(after), "--until", UNTIL, "--wait", "--timeout", "240")
        partitions = overview(ns.web_url)["clocks"]
        assert [(p["rules_version"], p["rules_swept"], "rules_between" in p) for p in partitions] == [
            (second.version, True, False)
        ] * 4

        snapshot = tmp_path / "snapshot.jsonl"
        ns.cli("snapshot", "--out", str(snapshot), "--rules", str(second_file))
        batch_profiles, batch_changes = batch_results(
            history, UNTIL, tmp_path, *start,
            "--rules-change", f"{CHANGE_AT}={first_file}", "--rules-change", f"{CHANGE_AT}={second_file}",
        )
        assert snapshot.read_bytes().splitlines() == batch_profiles
        assert ns.first_changes_by_customer() == batch_changes
        # Customers went through both: rules-caused changes under each, at the same instant.
        by_rules = {c["rules_version"] for changes in batch_changes.values() for c in changes if c["cause"] == {"kind": "rules"}}
        assert by_rules == {first.version, second.version}
    finally:
        ns.close()
