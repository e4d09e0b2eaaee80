"""Sender settings: the ``[sender]`` table of the config file, overridden by CLI flags."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from stream.clients import ConfigError
from stream.clients.settings import GroupInstanceId, config_error
from stream.sender.contacts import check_pattern, valid_address

PASSWORD_ENV = "SEGMENTS_SMTP_PASSWORD"


class SenderTopics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actions: str = "playbook-actions"
    dead_letter: str = "playbook-actions-dlq"
    customer_profiles: str = "customer-profiles"


class SmtpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    # "starttls": upgrade a plain connection (port 587); "tls": TLS from the first byte
    # (port 465); "none": plain text, for a relay on loopback or a local sink only.
    security: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    # Prefer SEGMENTS_SMTP_PASSWORD in the environment: config files get copied around.
    password: str | None = Field(None, repr=False)
    from_address: str = "segments@localhost"
    from_name: str | None = None
    # The right-hand side of Message-IDs; default: the from address's domain.
    message_id_domain: str | None = None
    timeout_seconds: float = Field(30.0, gt=0)
    local_hostname: str | None = None
    # TLS trust: a CA bundle instead of the system's, and whether to check the host name.
    ca_file: str | None = None
    check_hostname: bool = True

    @field_validator("from_address")
    @classmethod
    def _address(cls, value: str) -> str:
        if not valid_address(value):
            raise ValueError("not an email address")
        return value

    def id_domain(self) -> str:
        return self.message_id_domain or self.from_address.rsplit("@", 1)[1]


class SenderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group_id: str = "segments-sender"
    # Static group membership, as the worker's (README): a sender restarted within its
    # session takes its partitions back with no rebalance.
    group_instance_id: GroupInstanceId | None = None
    # A crashed sender's partitions go to a standby sender of the group after this.
    # (6 s and 30 min are the broker's default bounds.)
    session_timeout_seconds: float = Field(45.0, ge=6, le=1800)
    topics: SenderTopics = Field(default_factory=SenderTopics)
    # Partitions of the topics the sender creates when they are missing.
    partitions: int = Field(4, ge=1, le=1024)
    replication_factor: int = Field(1, ge=1)
    # The ledger (SQLite) lives here: keep it on a persistent volume.
    data_dir: str = ".segments/sender"
    templates_dir: str | None = None
    contacts_file: str | None = None
    # For demos: every customer's address from their id, e.g. "{customer_id}@example.com".
    recipient_pattern: str | None = None
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(6068, ge=0, le=65535)
    # Transient SMTP failures: retry after initial * 2^(n-1) seconds, at most max, with
    # jitter, until the action expires.
    retry_initial_seconds: float = Field(1.0, gt=0)
    retry_max_seconds: float = Field(300.0, gt=0)
    # Longest wait for new records between sends; due actions wake the loop earlier.
    poll_seconds: float = Field(0.5, gt=0, le=60)
    # Most actions sent before the loop reads Kafka again.
    send_batch: int = Field(100, ge=1)
    # How old the view of the actions' and profiles' partitions may get (Kafka's
    # metadata.max.age.ms): partitions added to either topic are read within this long.
    metadata_refresh_seconds: float = Field(30.0, gt=0, le=300)
    # Finished actions (sent, skipped, expired, failed) leave the ledger this many days
    # after they expired, checked every hour: the ledger stays bounded and keeps no
    # customer's data longer than it needs (an action read again later is recorded as
    # expired, never sent). 0: never (``segments ledger prune`` by hand).
    prune_after_days: float = Field(30.0, ge=0)

    @field_validator("recipient_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            problem = check_pattern(value)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("retry_max_seconds")
    @classmethod
    def _retry_bounds(cls, value: float, info: ValidationInfo) -> float:
        initial = info.data.get("retry_initial_seconds")
        if initial is not None and value < initial:
            raise ValueError("must be at least retry_initial_seconds")
        return value

    def ledger_path(self, *, demo: bool = False) -> Path:
        # Demo mode keeps its own ledger (and group): printing an action must not count as
        # sending it for the real sender.
        return Path(self.data_dir) / ("ledger-print.sqlite3" if demo else "ledger.sqlite3")


def load_sender_settings(config_file: str | Path | None, *, environ: Mapping[str, str] | None = None,
                         smtp: Mapping[str, Any] | None = None, **overrides: Any) -> SenderSettings:
    """The ``[sender]`` table of ``config_file`` (if any), non-None ``overrides`` (and
    ``smtp`` overrides for ``[sender.smtp]``) on top, the SMTP password from the
    environment when set."""
    environ = os.environ if environ is None else environ
    table: dict[str, Any] = {}
    if config_file is not None and Path(config_file).is_file():
        try:
            document = tomllib.loads(Path(config_file).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{config_file}: not valid TOML: {error}") from None
        table = document.get("sender", {})
        if not isinstance(table, dict):
            raise ConfigError(f"{config_file}: sender: must be a table ([sender])")
    table.update({key: value for key, value in overrides.items() if value is not None})
    smtp_overrides = {key: value for key, value in (smtp or {}).items() if value is not None}
    if environ.get(PASSWORD_ENV):
        smtp_overrides["password"] = environ[PASSWORD_ENV]
    if smtp_overrides:
        smtp_table = table.get("smtp", {})
        if not isinstance(smtp_table, dict):
            raise ConfigError(f"{config_file}: sender.smtp: must be a table ([sender.smtp])")
        table["smtp"] = {**smtp_table, **smtp_overrides}
    try:
        return SenderSettings.model_validate(table)
    except ValidationError as error:
        raise config_error(str(config_file or "command line"), "sender", error) from None
