"""Real-time RFM customer segmentation on Kafka.

Folders, one concern each:

- ``core/``     the segmentation logic: customer state, metrics, scores, tags, timers (pure Python)
- ``rules/``    the rules file: model, validation, shipped defaults, version hash (pure Python)
- ``events/``   decoding and validating raw input bytes into typed events (pure Python)
- ``clients/``  Kafka connection settings (bootstrap, SASL/SSL) shared by every client
- ``broker/``   the local single-node Apache Kafka broker (KRaft) for machines without Docker
- ``cli/``      the ``segments`` command
"""

__version__ = "0.1.0"
