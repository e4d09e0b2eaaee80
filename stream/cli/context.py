"""What every subcommand shares: the config file and how to reach Kafka."""

from __future__ import annotations

from dataclasses import dataclass

import click

from stream.broker import LocalBroker
from stream.clients import ConfigError, KafkaSettings, load_kafka_settings


@dataclass
class CliContext:
    config_file: str | None = None
    bootstrap_servers: str | None = None

    def kafka_settings(self) -> KafkaSettings:
        """Settings for talking to Kafka; errors become one clear line, never a traceback."""
        try:
            return load_kafka_settings(
                self.config_file,
                local_bootstrap=LocalBroker(say=click.echo).running_bootstrap(),
                bootstrap_servers=self.bootstrap_servers,
            )
        except ConfigError as error:
            raise click.ClickException(str(error)) from None
