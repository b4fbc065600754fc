"""Where emitted bytes go: the ``EventSink`` protocol that Kafka and the in-memory fake both fulfil.

Also ``DeadLetterSink``, the ingest consumers' way out for bad messages; each Kafka client
(kafka-python, confluent-kafka) fulfils both, and ``lineage.transport.clients`` picks one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from lineage.contract.events import DeadLetter
from lineage.errors import DeliveryError

__all__ = ["DeadLetterSink", "Delivery", "EventSink", "Headers", "Receipt", "Undelivered"]

#: Kafka record headers, (name, value) pairs: transport metadata beside the Avro event, outside its
#: contract (provenance: how the event reached Kafka; ``lineage.sdk.provenance``).
Headers = tuple[tuple[str, bytes], ...]


class Receipt(Protocol):
    """Where a delivered message was stored."""

    @property
    def topic(self) -> str:
        """The topic written to."""
        ...

    @property
    def partition(self) -> int:
        """The partition written to."""
        ...

    @property
    def offset(self) -> int:
        """The message's offset in its partition."""
        ...


class Delivery(Protocol):
    """A pending send; it resolves, acknowledged or failed, within the delivery timeout."""

    @property
    def event_id(self) -> str:
        """The id of the event sent."""
        ...

    def result(self, timeout_s: float | None = None) -> Receipt:
        """Wait for the acknowledgement; raise ``DeliveryError`` if it failed."""
        ...


@dataclass(frozen=True, slots=True)
class Undelivered:
    """A message the broker did not take: why, and its bytes, so it can be spooled and sent again.

    The key and value hold personal data (the key is the subject id): they are left out of ``repr``.
    """

    topic: str
    key: bytes = field(repr=False)
    value: bytes = field(repr=False)
    event_id: str
    error: DeliveryError
    headers: Headers = ()


class EventSink(Protocol):
    """Accepts encoded events keyed by subject; reports failed deliveries through ``failures()``."""

    def send(self, topic: str, key: bytes, value: bytes, event_id: str, headers: Headers = ()) -> Delivery:
        """Queue one message with ``headers``; raise ``DeliveryError`` if it cannot even be queued (no broker, say)."""
        ...

    def failures(self) -> list[Undelivered]:
        """Deliveries found failed since the last call, in send order, without waiting for pending ones.

        A delivery that stays unacknowledged past the delivery timeout counts as failed; after
        ``close()``, so does every delivery not acknowledged.
        """
        ...

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every queued message is acknowledged or failed (never past the delivery timeout)."""
        ...

    def close(self, timeout_s: float | None = None) -> None:
        """Flush and release resources."""
        ...


class DeadLetterSink(Protocol):
    """Sends dead letters (original key and bytes, the reason in headers) to the dead-letter topic."""

    def send(self, letter: DeadLetter) -> None:
        """Queue one dead letter; raise ``BrokerError`` if it cannot be queued (and at every later ``flush``)."""
        ...

    def flush(self) -> None:
        """Wait until every queued dead letter is acknowledged; raise ``BrokerError`` if one was not."""
        ...

    def close(self) -> None:
        """Flush and disconnect."""
        ...
