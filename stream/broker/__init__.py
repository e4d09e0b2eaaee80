"""The local single-node Apache Kafka broker (KRaft) for machines without Docker.

The jars come from Maven Central through Maven (``pom.xml`` beside this file) and
are cached under the project's ``.segments/kafka/lib``; the broker runs as a
detached ``java kafka.Kafka`` process with a generated ``server.properties``.
"""

from stream.broker.local import (
    KAFKA_VERSION,
    BrokerError,
    BrokerStatus,
    LocalBroker,
    default_home,
)

__all__ = ["KAFKA_VERSION", "BrokerError", "BrokerStatus", "LocalBroker", "default_home"]
