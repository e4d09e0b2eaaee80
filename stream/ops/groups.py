"""The engine's consumer groups: what ``segments lag`` watches when no ``--group`` is given."""

from __future__ import annotations

from pathlib import Path

from stream.sender.settings import load_sender_settings
from stream.worker.settings import load_playbooks_settings, load_worker_settings


def engine_group_sources(config_file: str | Path | None) -> dict[str, list[str]]:
    """Every consumer group the engine runs, per the config file (the stream worker and
    the playbooks app: faust uses the app id as the group id; the email sender), each
    with the topics it reads from their start until it has committed there (every
    consumer of the engine resets to the earliest offset). Table changelogs are not
    sources: the apps track those themselves."""
    worker = load_worker_settings(config_file)
    playbooks = load_playbooks_settings(config_file)
    sender = load_sender_settings(config_file)
    return {
        worker.app_id: [*worker.topics.inputs(), worker.topics.events],
        playbooks.app_id: [playbooks.topics.segment_changes or worker.topics.segment_changes],
        sender.group_id: [sender.topics.actions],
    }
