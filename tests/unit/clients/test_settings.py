from __future__ import annotations

from pathlib import Path

import pytest

from stream.clients import ConfigError, load_kafka_settings


def test_precedence_command_line_over_env_over_file_over_local_broker(tmp_path: Path) -> None:
    config = tmp_path / "segments.toml"
    config.write_text('[kafka]\nbootstrap_servers = "file:9092"\n')
    assert load_kafka_settings(None, environ={}, local_bootstrap="local:1").bootstrap_servers == "local:1"
    assert load_kafka_settings(config, environ={}, local_bootstrap="local:1").bootstrap_servers == "file:9092"
    env = {"KAFKA_BOOTSTRAP_SERVERS": "env:9092"}
    assert load_kafka_settings(config, environ=env, local_bootstrap="local:1").bootstrap_servers == "env:9092"
    explicit = load_kafka_settings(config, environ=env, bootstrap_servers="cli:9092")
    assert explicit.bootstrap_servers == "cli:9092" and explicit.source == "command line"


def test_default_is_localhost_9092(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_kafka_settings(None, environ={}).bootstrap_servers == "127.0.0.1:9092"


def test_sasl_ssl_settings_pass_through_to_both_clients() -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "b1:9093,b2:9093",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "segments",
        "KAFKA_SASL_PASSWORD": "s3cret",
    }
    settings = load_kafka_settings(None, environ=env)
    python_kwargs = settings.kafka_python_kwargs()
    assert python_kwargs["bootstrap_servers"] == ["b1:9093", "b2:9093"]
    assert python_kwargs["security_protocol"] == "SASL_SSL"
    assert python_kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert python_kwargs["sasl_plain_password"] == "s3cret"
    assert python_kwargs["ssl_context"] is not None
    aio_kwargs = settings.aiokafka_kwargs()
    assert aio_kwargs["sasl_plain_username"] == "segments" and aio_kwargs["ssl_context"] is not None
    # Secrets stay out of logs and reprs.
    assert "s3cret" not in settings.describe() and "s3cret" not in repr(settings)


def test_bad_config_file_names_file_field_and_reason(tmp_path: Path) -> None:
    config = tmp_path / "segments.toml"
    config.write_text('[kafka]\nsecurity_protocol = "TLS"\n')
    with pytest.raises(ConfigError) as error:
        load_kafka_settings(config, environ={})
    message = str(error.value)
    assert str(config) in message and "kafka.security_protocol" in message and "SASL_SSL" in message


def test_unknown_key_in_config_file_is_rejected(tmp_path: Path) -> None:
    config = tmp_path / "segments.toml"
    config.write_text('[kafka]\nbootstrap_server = "typo:9092"\n')
    with pytest.raises(ConfigError, match="kafka.bootstrap_server: Extra inputs are not permitted"):
        load_kafka_settings(config, environ={})


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "segments.toml"
    config.write_text("[kafka\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_kafka_settings(config, environ={})


def test_bad_env_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="KAFKA_SECURITY_PROTOCOL"):
        load_kafka_settings(None, environ={"KAFKA_SECURITY_PROTOCOL": "nope"})


def test_sasl_without_username_is_an_error() -> None:
    with pytest.raises(ConfigError, match="sasl_username"):
        load_kafka_settings(None, environ={"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"})
