"""Moving encoded events: the sink protocol the SDK sends through, and its implementations.

- ``sink``          ``EventSink``, ``Delivery``, ``Receipt``: the protocol
- ``kafka``         the Kafka adapter (the only package importing kafka-python), one module per client role
- ``memory``        an in-memory sink for tests (re-exported by ``lineage.testing``)
- ``probe``         one Kafka request on a raw socket: is a broker there and answering
"""
