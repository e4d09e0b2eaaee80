"""End to end: a scripted history through the real worker, the playbooks app and the
sender gives exactly the expected emails in a real SMTP server on loopback. Expected =
the pure core's decisions over the batch command's change list, kept when due now and
when the sender's send-time re-check passes on the customers' final profiles."""

from __future__ import annotations

import re
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from stream.broker.local import free_port
from stream.sender.action import Action, decode_action
from stream.sender.eligibility import Due, decode_profile, recheck, timing
from stream.sender.sink import SinkHandler, SmtpSink
from tests.integration.test_playbooks_app import PlaybooksProcess, _replay_recent, expected_actions
from tests.integration.worker_harness import SEGMENTS, WorkerNamespace, batch_results

pytestmark = pytest.mark.integration

ACTION_ID = re.compile(r"act-[0-9a-f]{32}")


@pytest.mark.timeout(600)
def test_a_scripted_history_becomes_exactly_the_expected_emails(kafka_bootstrap: str, unique_name, tmp_path: Path) -> None:
    ns = WorkerNamespace(kafka_bootstrap, unique_name("e2e"), tmp_path)
    playbooks = PlaybooksProcess(ns, tmp_path)
    handler = SinkHandler()
    sink = SmtpSink(handler, port=free_port()).start()
    sender: subprocess.Popen | None = None
    try:
        ns.start_worker()
        playbooks.start()
        history, until, now = _replay_recent(ns, tmp_path)
        _, batch_changes = batch_results(history, until, tmp_path)
        decided = expected_actions(batch_changes, now, set())
        playbooks.actions(len(decided))  # the playbooks app has decided everything

        profiles = {customer: decode_profile(raw) for customer, raw in ns.latest_profiles().items()}
        # Erased an hour ago: every action of theirs was decided before that, so none is sent.
        erased = {record["customer_id"] for record in decided if record.get("kind") == "erasure"}
        assert len(erased) == 2 and all(profiles[customer] is None for customer in erased)
        send_time = datetime.now(timezone.utc)
        expected = set()
        withheld = set()  # what would be sent, had they not been erased
        for record in decided:
            action = decode_action(orjson.dumps({**record, "emitted_at": "2026-01-01T00:00:00Z"}))
            if not isinstance(action, Action) or action.channel != "email" or action.status != "scheduled" or action.holdout:
                continue
            if action.customer_id in erased:
                assert record["trigger"]["cause"]["kind"] != "erasure"  # the erasure's own changes trigger nothing
                if isinstance(timing(action, send_time), Due):
                    withheld.add(record["action_id"])
                continue
            if isinstance(timing(action, send_time), Due) and recheck(action, profiles.get(action.customer_id)) is None:
                expected.add(record["action_id"])
        assert len(expected) >= 10, "the history must produce a meaningful number of emails"
        assert withheld, "the erased customers must have had emails due"

        with ns.config.open("a") as config:
            config.write(
                f'\n[sender]\ngroup_id = "{ns.prefix}-sender"\ndata_dir = "{tmp_path / "sender-data"}"\n'
                f'recipient_pattern = "{{customer_id}}@example.com"\nmetrics_port = 0\n\n'
                f'[sender.topics]\nactions = "{playbooks.actions_topic}"\ndead_letter = "{ns.prefix}-actions-dlq"\n'
                f'customer_profiles = "{ns.topics["customer_profiles"]}"\n\n'
                f'[sender.smtp]\nhost = "127.0.0.1"\nport = {sink.port}\nfrom_address = "shop@example.com"\n'
            )
        log = (tmp_path / "sender.log").open("wb")
        sender = subprocess.Popen([SEGMENTS, "--config", str(ns.config), "sender"], env=ns.env(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 120
        while len(handler.received()) < len(expected) and time.monotonic() < deadline:
            assert sender.poll() is None, (tmp_path / "sender.log").read_text()[-3000:]
            time.sleep(0.5)
        time.sleep(3)  # nothing more may arrive
        received = [ACTION_ID.search(mail.message_id or "").group(0) for mail in handler.received()]
        assert sorted(received) == sorted(expected), "exactly the expected emails, each once"
        recipients = {to for mail in handler.received() for to in mail.rcpt_tos}
        assert all(address.endswith("@example.com") for address in recipients)
    finally:
        if sender is not None and sender.poll() is None:
            sender.kill()
            sender.wait(timeout=30)
        sink.stop()
        playbooks.close()
        ns.close()
