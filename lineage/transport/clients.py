"""The Kafka client a setting chooses: ``settings.kafka_client`` is kafka-python or confluent (librdkafka).

The one place the choice is read, so every client of a process (the emitter's sink, the audit
trail's, the dead letters, the ingest consumer's group member) uses the same library. Each adapter
is imported only when chosen: a service on kafka-python never loads librdkafka.
"""

from __future__ import annotations

from lineage.settings import Settings
from lineage.transport.sink import DeadLetterSink, EventSink
from lineage.transport.source import BatchSource, PartitionListener

__all__ = ["batch_source", "dead_letter_sink", "event_sink"]


def event_sink(settings: Settings) -> EventSink:
    """A connected event producer on the chosen client; raises ``BrokerError`` subclasses as each adapter does."""
    if settings.kafka_client == "confluent":
        from lineage.transport.confluent import ConfluentEventSink

        return ConfluentEventSink(settings)
    from lineage.transport.kafka import KafkaEventSink

    return KafkaEventSink(settings)


def dead_letter_sink(settings: Settings) -> DeadLetterSink:
    """A connected dead-letter producer on the chosen client; ``BrokerError`` if the dead-letter topic is missing."""
    if settings.kafka_client == "confluent":
        from lineage.transport.confluent import ConfluentDeadLetterProducer

        return ConfluentDeadLetterProducer(settings)
    from lineage.transport.kafka import DeadLetterProducer

    return DeadLetterProducer(settings)


def batch_source(
    settings: Settings,
    group_id: str,
    listener: PartitionListener,
    max_poll_records: int,
    instance_id: str | None = None,
) -> BatchSource:
    """A group member on ``settings.topic`` on the chosen client; ``BrokerError`` subclasses as each adapter raises."""
    if settings.kafka_client == "confluent":
        from lineage.transport.confluent import ConfluentBatchSource

        return ConfluentBatchSource(settings, group_id, listener, max_poll_records, instance_id)
    from lineage.transport.kafka import KafkaBatchSource

    return KafkaBatchSource(settings, group_id, listener, max_poll_records, instance_id)
