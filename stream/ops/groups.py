"""The engine's consumer groups: what ``segments lag`` watches when no ``--group`` is given."""

from __future__ import annotations

from pathlib import Path

from stream.worker.settings import load_worker_settings


def engine_groups(config_file: str | Path | None) -> list[str]:
    """Every consumer group the engine runs, per the config file.

    Today only the stream worker: faust uses the app id as the consumer group id. The
    playbook and sender groups (issue 4) belong here when they exist.
    """
    worker = load_worker_settings(config_file)
    return [worker.app_id]
