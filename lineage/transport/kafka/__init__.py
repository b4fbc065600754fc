"""The Kafka adapter: the only package importing kafka-python. One module per client role.

- ``connection``    options every client shares, and a bounded wait for a broker
- ``producer``      ``KafkaEventSink``, the emitter's transport
- ``dead_letters``  ``DeadLetterProducer``, the consumer's way out for bad messages
- ``consumer``      ``KafkaBatchSource``, a group member polling batches
- ``admin``         topic creation
- ``tail``          reading a topic from the beginning

Everything here speaks bytes and our own types; kafka-python's exceptions become ``BrokerError``
subclasses at this boundary.
"""

from lineage.transport.kafka.admin import create_topics, grant, topic_exists
from lineage.transport.kafka.connection import wait_for_broker
from lineage.transport.kafka.consumer import KafkaBatchSource, PartitionListener, RawMessage
from lineage.transport.kafka.dead_letters import DeadLetterProducer
from lineage.transport.kafka.producer import DeliveryReceipt, KafkaDelivery, KafkaEventSink
from lineage.transport.kafka.tail import read_messages

__all__ = [
    "DeadLetterProducer",
    "DeliveryReceipt",
    "KafkaBatchSource",
    "KafkaDelivery",
    "KafkaEventSink",
    "PartitionListener",
    "RawMessage",
    "create_topics",
    "topic_exists",
    "grant",
    "read_messages",
    "wait_for_broker",
]
