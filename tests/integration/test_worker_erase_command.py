"""`segments erase` against a running worker: the customers named are erased (records of
kind erasure with the printed request ids, profile tombstones), and nobody else is."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.integration.worker_harness import WorkerNamespace, history_files

pytestmark = pytest.mark.integration

UNTIL = "1998-07-01"


def test_erase_names_customers_and_the_worker_erases_exactly_them(kafka_bootstrap: str, unique_name, tmp_path: Path) -> None:
    history, _ = history_files(tmp_path, 40)
    ns = WorkerNamespace(kafka_bootstrap, unique_name("erase"), tmp_path)
    try:
        ns.start_worker()
        ns.cli("replay", str(history), "--until", UNTIL, "--wait", "--timeout", "240")
        before = ns.latest_profiles()
        customers = sorted(before)
        assert len(customers) > 10 and all(value is not None for value in before.values())
        named, in_file = customers[:2], customers[2]
        id_file = tmp_path / "to-erase.txt"
        id_file.write_text(f"{in_file}\n\n{named[0]}\n")  # a blank line, and a repeat

        refused = ns.cli("erase", "", check=False)
        assert refused.returncode == 2 and "customer id ''" in refused.stderr

        done = ns.cli("erase", *named, "--file", str(id_file), "--at", "1998-07-02", "--wait", "--timeout", "240")
        printed = dict(line.split("\t") for line in done.stdout.splitlines())
        assert sorted(printed) == sorted([*named, in_file])  # one request per customer
        assert "The worker has erased them: 3 erasure record(s)" in done.stderr

        erasures = {
            customer: [change for change in changes if change["kind"] == "erasure"]
            for customer, changes in ns.changes_by_customer().items()
        }
        assert {customer for customer, records in erasures.items() if records} == set(printed)
        for customer, request_id in printed.items():
            (record,) = erasures[customer]
            assert record["cause"] == {"kind": "erasure", "event_id": request_id}
            assert record["at"] == "1998-07-02T00:00:00.000Z"
        after = ns.latest_profiles()
        assert {customer for customer, value in after.items() if value is None} == set(printed)

        # Asked again, later: confirmed by a record of its own. Asked for an instant already
        # covered: nothing more to erase, and the command says it found no confirmation.
        again = ns.cli("erase", named[0], "--at", "1998-07-03", "--wait", "--timeout", "240")
        assert "1 erasure record(s)" in again.stderr
        covered = ns.cli("erase", named[1], "--at", "1998-07-01T12:00:00Z", "--wait", "--timeout", "240", check=False)
        assert covered.returncode == 1 and f"no erasure record on {ns.topics['segment_changes']} for {named[1]}" in covered.stderr

        looked_up = ns.cli("profile", named[0], check=False)
        assert looked_up.returncode == 1 and "was erased at 1998-07-03T00:00:00.000Z" in looked_up.stderr
        # The dashboard's lookup says so too; a customer never seen stays unknown.
        for customer, said in ((named[0], "erased at 1998-07-03T00:00:00.000Z"), ("nobody", "unknown customer")):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{ns.web_url}/api/customers/{customer}", timeout=10)
            assert refused.value.code == 404 and orjson.loads(refused.value.read()) == {"error": said}
        snapshot = tmp_path / "snapshot.jsonl"
        ns.cli("snapshot", "--out", str(snapshot))
        assert len(snapshot.read_bytes().splitlines()) == len(customers) - len(printed)
    finally:
        ns.close()
