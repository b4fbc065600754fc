"""Moving encoded events: the sink protocol the SDK sends through, and its implementations.

- ``sink``          ``EventSink``, ``Delivery``, ``Receipt``: the protocol
- ``kafka``         the Kafka adapter (the only package importing kafka-python), one module per client role
- ``memory``        an in-memory sink for tests (re-exported by ``lineage.testing``)
- ``local_broker``  a real single-node Kafka broker from the official jars, for the demo and the tests
"""
