"""The in-memory transport: a sink that keeps what an ``Emitter`` sends, for tests without a broker.

``MemorySink`` records what an ``Emitter`` sends; ``fail_next`` makes deliveries fail, and ``down``
makes every send fail at once as with no broker, so callers can test their error handling. The
real Kafka path is tested against a real broker too, never only this.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lineage.errors import DeliveryError
from lineage.transport.sink import Headers, Undelivered

__all__ = ["MemoryDelivery", "MemoryReceipt", "MemorySink", "SentMessage"]


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One message the sink accepted."""

    topic: str
    key: bytes
    value: bytes
    event_id: str
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class MemoryReceipt:
    """Where the fake stored a message: partition 0, offset = position."""

    topic: str
    partition: int
    offset: int


@dataclass(slots=True)
class MemoryDelivery:
    """A delivery that already succeeded or failed."""

    event_id: str
    receipt: MemoryReceipt | None
    error: DeliveryError | None = None

    def result(self, timeout_s: float | None = None) -> MemoryReceipt:
        """Return the receipt, or raise the failure."""
        if self.error is not None:
            raise self.error
        assert self.receipt is not None
        return self.receipt


@dataclass
class MemorySink:
    """An ``EventSink`` that keeps messages in a list."""

    messages: list[SentMessage] = field(default_factory=list)
    fail_next: int = 0
    down: bool = False
    closed: bool = False
    _failed: list[Undelivered] = field(default_factory=list)

    def send(self, topic: str, key: bytes, value: bytes, event_id: str, headers: Headers = ()) -> MemoryDelivery:
        """Store the message; fail it while ``fail_next`` > 0; refuse it while ``down``."""
        if self.down:
            raise DeliveryError(event_id, topic, "no broker answers (injected outage)")
        if self.fail_next > 0:
            self.fail_next -= 1
            error = DeliveryError(event_id, topic, "injected failure")
            self._failed.append(Undelivered(topic, key, value, event_id, error, headers))
            return MemoryDelivery(event_id, None, error)
        self.messages.append(SentMessage(topic, key, value, event_id, headers))
        return MemoryDelivery(event_id, MemoryReceipt(topic, 0, len(self.messages) - 1))

    def failures(self) -> list[Undelivered]:
        """Failures injected since the last call."""
        failed, self._failed = self._failed, []
        return failed

    def flush(self, timeout_s: float | None = None) -> None:
        """Nothing is ever pending."""

    def close(self, timeout_s: float | None = None) -> None:
        """Mark closed."""
        self.closed = True
