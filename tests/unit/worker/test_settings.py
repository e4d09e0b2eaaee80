from pathlib import Path

import pytest

from stream.clients import ConfigError
from stream.worker.settings import COMMIT_INTERVAL_SECONDS, load_worker_settings, state_dir


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


def worker_faust_app(tmp_path: Path, worker_lines: str = ""):
    """The faust app a worker with these ``[worker]`` lines would run (never started)."""
    from stream.clients import KafkaSettings
    from stream.worker.plumbing import stream_app

    config = tmp_path / "segments.toml"
    config.write_text(f'[worker]\ndata_dir = "{tmp_path}"\n{worker_lines}\n')
    settings = load_worker_settings(config)
    return stream_app(settings, KafkaSettings(bootstrap_servers="127.0.0.1:9"), settings.partitions)


@pytest.mark.parametrize(("line", "expected"), [("", 0), ("standby_replicas = 2", 2)])
def test_standby_replicas_reach_the_faust_app(tmp_path: Path, line: str, expected: int) -> None:
    assert worker_faust_app(tmp_path, line).conf.table_standby_replicas == expected


def test_the_worker_notices_topics_missing_from_metadata_within_a_minute(tmp_path: Path) -> None:
    """aiokafka rejoins the group when a subscribed topic's metadata changes, but only sees
    it at a refresh: its default (5 minutes) left a worker that joined too early without
    partitions for that long."""
    assert worker_faust_app(tmp_path).conf.consumer_metadata_max_age_ms <= 60_000


@pytest.mark.parametrize(("line", "expected"), [("", None), ('group_instance_id = "worker-a.1"', "worker-a.1")])
def test_static_membership_reaches_the_faust_app(tmp_path: Path, line: str, expected: str | None) -> None:
    assert worker_faust_app(tmp_path, line).conf.consumer_group_instance_id == expected


@pytest.mark.parametrize(("line", "expected"), [("", COMMIT_INTERVAL_SECONDS), ("commit_interval_seconds = 0.25", 0.25)])
def test_the_commit_interval_reaches_the_faust_app(tmp_path: Path, line: str, expected: float) -> None:
    """Under exactly-once the interval is a floor on latency (faust's own default, 2.8 s,
    made the worker's p50 4.4 s), so the worker does not leave it to faust."""
    assert worker_faust_app(tmp_path, line).conf.broker_commit_interval == expected
    assert COMMIT_INTERVAL_SECONDS < 2.8


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("standby_replicas = -1", "worker.standby_replicas: Input should be greater than or equal to 0"),
        ("commit_interval_seconds = 0", "worker.commit_interval_seconds: Input should be greater than 0"),
        # a group instance id Kafka would refuse
        ('group_instance_id = "worker a"', "worker.group_instance_id: String should match pattern"),
        ("max_compaction_lag_days = 0", "worker.max_compaction_lag_days: Input should be greater than 0"),
    ],
)
def test_an_invalid_setting_stops_start_up_naming_it(tmp_path: Path, line: str, message: str) -> None:
    config = tmp_path / "segments.toml"
    config.write_text(f"[worker]\n{line}\n")
    with pytest.raises(ConfigError, match=message):
        load_worker_settings(config)


def test_the_compaction_lag_is_given_in_days(tmp_path: Path) -> None:
    config = tmp_path / "segments.toml"
    config.write_text("[worker]\nmax_compaction_lag_days = 1.5\n")
    assert load_worker_settings(config).max_compaction_lag_ms == 129_600_000
    assert load_worker_settings(None).max_compaction_lag_ms == 7 * 86_400_000


def test_the_changelog_segment_length_is_given_in_minutes(tmp_path: Path) -> None:
    config = tmp_path / "segments.toml"
    config.write_text("[worker]\nchangelog_segment_minutes = 2.5\n")
    assert load_worker_settings(config).changelog_segment_ms == 150_000
    assert load_worker_settings(None).changelog_segment_ms == 3_600_000
    config.write_text("[worker]\nchangelog_segment_minutes = 0\n")
    with pytest.raises(ConfigError, match="changelog_segment_minutes"):
        load_worker_settings(config)
