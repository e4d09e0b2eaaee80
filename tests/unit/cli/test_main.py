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


def test_every_subcommand_loads_under_its_name() -> None:
    import click

    context = click.Context(main_module.cli)
    names = main_module.cli.list_commands(context)
    assert names == sorted(main_module.SUBCOMMANDS)
    for name in names:
        command = main_module.cli.get_command(context, name)
        assert isinstance(command, click.Command) and command.name == name
    assert main_module.cli.get_command(context, "no-such-command") is None


def test_a_subcommand_imports_only_what_it_needs() -> None:
    """`segments rules check`, `replay`, `batch`, `snapshot` and `profile` start without
    importing faust (the worker's stack, about a second of imports)."""
    import subprocess

    probe = (
        "import sys\n"
        "if sys.argv[1] == 'import-the-worker':  # the probe's control\n"
        "    import stream.worker.app\n"
        "from stream.cli.main import cli\n"
        "try:\n"
        "    cli(sys.argv[1:], prog_name='segments')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('faust' in sys.modules)\n"
    )

    def imports_faust(*args: str) -> bool:
        completed = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True)
        return completed.stdout.strip().splitlines()[-1] == "True"

    assert not imports_faust("rules", "check", "--help")
    assert not imports_faust("replay", "--help")
    assert not imports_faust("batch", "--help")
    assert not imports_faust("snapshot", "--help")
    assert not imports_faust("profile", "--help")
    assert imports_faust("import-the-worker")
