"""Kafka connection settings shared by every client the project creates.

One place reads the bootstrap address and the SASL/SSL settings (environment,
config file, or the local broker's state), and hands each client library the
keyword arguments it expects. Nothing here knows about segmentation.
"""

from stream.clients.settings import ConfigError, KafkaSettings, load_kafka_settings

__all__ = ["ConfigError", "KafkaSettings", "load_kafka_settings"]
