"""What a consumer reads through, whichever Kafka client: the batch source, its messages, its listener.

``lineage.transport.kafka.KafkaBatchSource`` (kafka-python) and
``lineage.transport.confluent.ConfluentBatchSource`` (librdkafka) both are a ``BatchSource``;
``lineage.transport.clients.batch_source`` picks one by ``settings.kafka_client``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from lineage.transport.sink import Receipt

__all__ = ["BatchSource", "PartitionListener", "RawMessage"]


class RawMessage(Receipt, Protocol):
    """A message as read from Kafka, before decoding: where it is (topic, partition, offset) and what.

    A protocol, not a class we build: kafka-python's records already have these attributes, and
    copying each into an object of ours cost ~3 us/event on the ingest path.
    """

    @property
    def key(self) -> bytes | None:
        """The message key (the subject, or the holder of a bulk event)."""
        ...

    @property
    def value(self) -> bytes | None:
        """The encoded event."""
        ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]:
        """The message headers."""
        ...


class PartitionListener(Protocol):
    """Told when this consumer gains or loses partitions."""

    def assigned(self, partitions: list[int]) -> dict[int, int]:
        """Return the offset to start each newly assigned partition from (absent: the beginning)."""
        ...

    def revoked(self, partitions: list[int]) -> None:
        """Finish work on partitions about to go to another consumer."""
        ...


class BatchSource(Protocol):
    """A group member on one topic that polls batches and commits after the store has them."""

    topic: str

    def poll(self, timeout_s: float) -> list[RawMessage]:
        """Up to the source's batch size of messages, in offset order within each partition."""
        ...

    def seek(self, partition: int, offset: int | None) -> None:
        """Continue ``partition`` from ``offset`` (None: from the beginning)."""
        ...

    def commit(self, offsets: dict[int, int]) -> None:
        """Record next offsets in Kafka too, for lag tools; the store's offsets stay the truth."""
        ...

    def lag(self) -> dict[int, int]:
        """Messages behind the end of each assigned partition."""
        ...

    def close(self) -> None:
        """Leave the group."""
        ...
