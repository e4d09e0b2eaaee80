from pathlib import Path

import pytest

from stream.clients import ConfigError
from stream.worker.settings import load_worker_settings, state_dir


def test_bad_worker_table_names_file_field_and_reason(tmp_path: Path) -> None:
    config = tmp_path / "segments.toml"
    config.write_text("[worker]\npartitions = 0\n")
    with pytest.raises(ConfigError, match=rf"{config}: worker.partitions: Input should be greater than or equal to 1"):
        load_worker_settings(config)


def test_unknown_worker_key_is_rejected(tmp_path: Path) -> None:
    config = tmp_path / "segments.toml"
    config.write_text('[worker]\nclok = "event"\n')
    with pytest.raises(ConfigError, match="worker.clok: Extra inputs are not permitted"):
        load_worker_settings(config)


def test_flags_override_the_file_and_apps_get_their_own_state_folder(tmp_path: Path) -> None:
    config = tmp_path / "segments.toml"
    config.write_text('[worker]\nclock = "event"\napp_id = "a"\n')
    settings = load_worker_settings(config, clock="wall")
    assert settings.clock == "wall" and settings.app_id == "a"
    assert state_dir(settings) == Path(".segments/worker") / "a"
