"""Moving encoded events: the sink protocol the SDK sends through, and its implementations.

- ``sink``          ``EventSink``, ``Delivery``, ``Receipt``, ``DeadLetterSink``: the protocols
- ``clients``       the Kafka client ``settings.kafka_client`` chooses: ``event_sink``, ``dead_letter_sink``
- ``deadlines``     the rule every Kafka delivery keeps: resolved within the delivery timeout
- ``letters``       a dead letter as a Kafka record, cut to fit its topic
- ``kafka``         the Kafka adapter (the only package importing kafka-python), one module per client role
- ``confluent``     the producers on confluent-kafka (librdkafka; the only package importing it)
- ``memory``        an in-memory sink for tests (re-exported by ``lineage.testing``)
- ``probe``         one Kafka request on a raw socket: is a broker there and answering
"""
