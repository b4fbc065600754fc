"""Messages into the store, bad ones to the dead-letter topic.

- ``pipeline``  ``Ingestor``: decode, validate, buffer rows per partition, commit with offsets; dead letters out
- ``consumer``  ``IngestConsumer``: a Kafka consumer-group member driving the pipeline
- ``backfill``  Avro container files through the same pipeline
"""
