"""The ``segments`` entry point turns a broker problem into one line, not a traceback."""

from __future__ import annotations

import sys

import pytest
from kafka.errors import KafkaTimeoutError

from stream.cli import main as main_module
from stream.clients.topics import TopicsNotReady


@pytest.mark.parametrize(
    "error", [KafkaTimeoutError("Unable to bootstrap from ['127.0.0.1:9']"), TopicsNotReady("the broker shows no leader for every partition of orders after 30s")],
)
def test_a_kafka_problem_is_one_line_and_exit_code_1(monkeypatch, tmp_path, capsys, error: Exception) -> None:
    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr("stream.cli.replay.ensure_topics", refuse)
    history = tmp_path / "empty.jsonl"
    history.write_text("")
    monkeypatch.setattr(sys, "argv", ["segments", "replay", str(history)])
    with pytest.raises(SystemExit) as exit_:
        main_module.main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"segments: Kafka: {error}"
    assert "Traceback" not in err
