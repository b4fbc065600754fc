"""The confluent-kafka adapter (librdkafka, in C): the only package importing confluent_kafka.

- ``connection``    our settings as librdkafka properties; its errors as ours
- ``producer``      ``ConfluentEventSink``, the emitter's transport on librdkafka
- ``dead_letters``  ``ConfluentDeadLetterProducer``, the consumer's way out for bad messages
- ``consumer``      ``ConfluentBatchSource``, the ingest consumer's group member on librdkafka

Chosen by ``settings.kafka_client = "confluent"``, the default (``lineage.transport.clients``). The checks before
connecting, the topic administration and reading a topic from its start (``read_messages``) stay
on kafka-python.
"""

from lineage.transport.confluent.consumer import ConfluentBatchSource
from lineage.transport.confluent.dead_letters import ConfluentDeadLetterProducer
from lineage.transport.confluent.producer import ConfluentDelivery, ConfluentEventSink

__all__ = ["ConfluentBatchSource", "ConfluentDeadLetterProducer", "ConfluentDelivery", "ConfluentEventSink"]
