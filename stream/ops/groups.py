"""The engine's consumer groups: what ``segments lag`` watches when no ``--group`` is given."""

from __future__ import annotations

from pathlib import Path

from stream.sender.settings import load_sender_settings
from stream.worker.settings import load_playbooks_settings, load_worker_settings


def engine_groups(config_file: str | Path | None) -> list[str]:
    """Every consumer group the engine runs, per the config file: the stream worker and
    the playbooks app (faust uses the app id as the group id), and the email sender."""
    return [
        load_worker_settings(config_file).app_id,
        load_playbooks_settings(config_file).app_id,
        load_sender_settings(config_file).group_id,
    ]
