from pathlib import Path

import pytest

from stream.clients import ConfigError
from stream.sender.settings import load_sender_settings


def test_defaults() -> None:
    settings = load_sender_settings(None, environ={})
    assert settings.group_id == "segments-sender" and settings.metrics_port == 6068 and settings.metrics_host == "127.0.0.1"
    assert (settings.topics.actions, settings.topics.dead_letter, settings.topics.customer_profiles) == (
        "playbook-actions", "playbook-actions-dlq", "customer-profiles")
    assert settings.ledger_path() != settings.ledger_path(demo=True)
    assert settings.smtp.id_domain() == "localhost"


def test_file_flags_and_the_password_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "segments.toml"
    config.write_text('[sender]\nmetrics_port = 7000\n[sender.smtp]\nhost = "mail.example.com"\nport = 587\n'
                      'security = "starttls"\nusername = "shop"\npassword = "from-file"\nfrom_address = "news@shop.example"\n')
    settings = load_sender_settings(config, environ={"SEGMENTS_SMTP_PASSWORD": "from-env"}, smtp={"port": 2525}, metrics_port=None)
    assert settings.metrics_port == 7000 and settings.smtp.port == 2525 and settings.smtp.host == "mail.example.com"
    assert settings.smtp.password == "from-env" and settings.smtp.id_domain() == "shop.example"
    assert "from-env" not in repr(settings)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[sender]\nmetrics_port = 70000\n", r"sender.metrics_port: Input should be less than or equal to 65535"),
        ("[sender]\ngroupid = 'x'\n", r"sender.groupid: Extra inputs are not permitted"),
        ("[sender.smtp]\nsecurity = 'ssl'\n", r"sender.smtp.security: Input should be 'none', 'starttls' or 'tls'"),
        ("[sender.smtp]\nfrom_address = 'nobody'\n", r"sender.smtp.from_address: Value error, not an email address"),
        ("[sender]\nrecipient_pattern = '{id}@x.y'\n", r"sender.recipient_pattern: Value error, must contain \{customer_id\}"),
        ("[sender]\nretry_initial_seconds = 10\nretry_max_seconds = 1\n", r"sender.retry_max_seconds: Value error, must be at least"),
    ],
)
def test_bad_sender_tables_name_file_field_and_reason(tmp_path: Path, table: str, message: str) -> None:
    config = tmp_path / "segments.toml"
    config.write_text(table)
    with pytest.raises(ConfigError, match=rf"^{config}: {message}"):
        load_sender_settings(config, environ={})


def test_static_membership_reaches_the_actions_consumer(tmp_path: Path) -> None:
    from stream.sender.assignor import OneActiveSenderAssignor
    from stream.sender.runner import actions_consumer_options

    config = tmp_path / "segments.toml"
    config.write_text('[sender]\ngroup_instance_id = "sender-1"\n')
    assignor = OneActiveSenderAssignor()
    options = actions_consumer_options(load_sender_settings(config, environ={}), "segments-sender", assignor)
    assert options["group_instance_id"] == "sender-1" and options["group_id"] == "segments-sender"
    assert options["isolation_level"] == "read_committed"
    assert options["partition_assignment_strategy"] == [assignor]  # one active sender (no other assignor to fall back on)
    assert actions_consumer_options(load_sender_settings(None, environ={}), "g", assignor)["group_instance_id"] is None
