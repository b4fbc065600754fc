"""Where emitted bytes go: the ``EventSink`` protocol that Kafka and the in-memory fake both fulfil."""

from __future__ import annotations

from typing import Protocol

from lineage.errors import DeliveryError

__all__ = ["Delivery", "EventSink", "Receipt"]


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
    """A pending send."""

    def result(self, timeout_s: float | None = None) -> Receipt:
        """Wait for the acknowledgement; raise ``DeliveryError`` if it failed."""
        ...


class EventSink(Protocol):
    """Accepts encoded events keyed by subject; reports failed deliveries through ``failures()``."""

    def send(self, topic: str, key: bytes, value: bytes, event_id: str) -> Delivery:
        """Queue one message."""
        ...

    def failures(self) -> list[DeliveryError]:
        """Deliveries found failed since the last call, without waiting for pending ones."""
        ...

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every queued message is acknowledged or failed."""
        ...

    def close(self, timeout_s: float | None = None) -> None:
        """Flush and release resources."""
        ...
