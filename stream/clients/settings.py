"""Where Kafka is and how to authenticate to it.

Precedence, highest first: explicit overrides (CLI flags), environment variables
(``KAFKA_BOOTSTRAP_SERVERS``, ``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_*``,
``KAFKA_SSL_*``), the ``[kafka]`` table of the config file (``--config``,
``SEGMENTS_CONFIG`` or ``./segments.toml``), the local broker started by
``segments kafka start``, and finally ``127.0.0.1:9092``.

Passwords never appear in ``repr`` or logs: use :meth:`KafkaSettings.describe`.
"""

from __future__ import annotations

import os
import ssl
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
CONFIG_ENV = "SEGMENTS_CONFIG"
DEFAULT_CONFIG_FILE = "segments.toml"

# Kafka's group.instance.id (static group membership), as the broker accepts it. Unique
# per process of a group, the same across its restarts (a pod or host name).
GroupInstanceId = Annotated[str, StringConstraints(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")]

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"]


class ConfigError(Exception):
    """A config file or setting is invalid; the message names the file, the field and the reason."""


def config_error(source: str, table: str, error: ValidationError) -> ConfigError:
    """``<file>: <table>.<field path>: <reason>`` for the first problem pydantic found."""
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    return ConfigError(f"{source}: {table}.{where}: {problem['msg']}")


class _KafkaTable(BaseModel):
    """The ``[kafka]`` table of the config file; unknown keys are typos and rejected."""

    model_config = ConfigDict(extra="forbid")

    bootstrap_servers: str | None = None
    security_protocol: SecurityProtocol | None = None
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: str | None = None
    ssl_check_hostname: bool | None = None


_ENV_NAMES = {
    "bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
    "security_protocol": "KAFKA_SECURITY_PROTOCOL",
    "sasl_mechanism": "KAFKA_SASL_MECHANISM",
    "sasl_username": "KAFKA_SASL_USERNAME",
    "sasl_password": "KAFKA_SASL_PASSWORD",
    "ssl_cafile": "KAFKA_SSL_CAFILE",
    "ssl_certfile": "KAFKA_SSL_CERTFILE",
    "ssl_keyfile": "KAFKA_SSL_KEYFILE",
    "ssl_password": "KAFKA_SSL_PASSWORD",
    "ssl_check_hostname": "KAFKA_SSL_CHECK_HOSTNAME",
}


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: str | None = field(default=None, repr=False)
    ssl_check_hostname: bool = True
    # Where the bootstrap address came from, for messages ("environment", "local broker", ...).
    source: str = "default"

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def bootstrap_list(self) -> list[str]:
        return [server.strip() for server in self.bootstrap_servers.split(",") if server.strip()]

    def describe(self) -> str:
        """A one-line summary safe for logs: no secrets."""
        auth = f", SASL {self.sasl_mechanism} as {self.sasl_username!r}" if self.uses_sasl else ""
        return f"{self.bootstrap_servers} ({self.security_protocol}{auth}; from {self.source})"

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.uses_ssl:
            return None
        context = ssl.create_default_context(cafile=self.ssl_cafile)
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile, self.ssl_password)
        return context

    def kafka_python_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's KafkaProducer/KafkaConsumer/KafkaAdminClient."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_list(),
            "security_protocol": self.security_protocol,
        }
        if self.uses_sasl:
            kwargs["sasl_mechanism"] = self.sasl_mechanism or "PLAIN"
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        if self.uses_ssl:
            kwargs["ssl_context"] = self.ssl_context()
        return kwargs

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's AIOKafkaProducer/AIOKafkaConsumer."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.uses_sasl:
            kwargs["sasl_mechanism"] = self.sasl_mechanism or "PLAIN"
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        if self.uses_ssl:
            kwargs["ssl_context"] = self.ssl_context()
        return kwargs


def _read_config_table(path: Path) -> dict[str, Any]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config file: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    table = document.get("kafka", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: kafka: must be a table ([kafka]), got {type(table).__name__}")
    try:
        return _KafkaTable.model_validate(table).model_dump(exclude_none=True)
    except ValidationError as error:
        raise config_error(str(path), "kafka", error) from None


def config_file_path(explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The config file in effect: the explicit one, ``$SEGMENTS_CONFIG``, or ``./segments.toml`` if present."""
    environ = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def load_kafka_settings(
    config_file: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    local_bootstrap: str | None = None,
    **overrides: Any,
) -> KafkaSettings:
    """Resolve the settings by the precedence in the module docstring.

    ``local_bootstrap`` is the running local broker's address, if any; callers pass it
    so that this module stays independent of the broker manager.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    source = "default"
    if local_bootstrap:
        values["bootstrap_servers"] = local_bootstrap
        source = "local broker"
    path = config_file_path(config_file, environ)
    if path is not None:
        table = _read_config_table(path)
        values.update(table)
        if "bootstrap_servers" in table:
            source = f"config file {path}"
    from_env = {name: environ[env] for name, env in _ENV_NAMES.items() if environ.get(env)}
    if from_env:
        try:
            validated = _KafkaTable.model_validate(from_env).model_dump(exclude_none=True)
        except ValidationError as error:
            problem = error.errors()[0]
            name = str(problem["loc"][0])
            raise ConfigError(f"environment: {_ENV_NAMES[name]}: {problem['msg']}") from None
        values.update(validated)
        if "bootstrap_servers" in from_env:
            source = f"environment ({_ENV_NAMES['bootstrap_servers']})"
    explicit = {name: value for name, value in overrides.items() if value is not None}
    unknown = set(explicit) - {f.name for f in fields(KafkaSettings)}
    if unknown:
        raise TypeError(f"unknown Kafka setting(s): {', '.join(sorted(unknown))}")
    values.update(explicit)
    if "bootstrap_servers" in explicit:
        source = "command line"
    settings = replace(KafkaSettings(), **values, source=source)
    if settings.uses_sasl and not settings.sasl_username and settings.sasl_mechanism != "GSSAPI":
        raise ConfigError(f"{path or 'environment'}: kafka.sasl_username: required when security_protocol is {settings.security_protocol}")
    return settings
