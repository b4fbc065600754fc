"""Test helpers users may import: an in-memory sink to test code that emits events, without a broker.

``MemorySink`` records what an ``Emitter`` sends; ``fail_next`` makes deliveries fail so callers can
test their error handling. It lives in ``lineage.transport.memory`` beside the Kafka transport it
stands in for; the real Kafka path is tested against a real broker too, never only this.
"""

from lineage.transport.memory import MemoryDelivery, MemoryReceipt, MemorySink, SentMessage

__all__ = ["MemoryDelivery", "MemoryReceipt", "MemorySink", "SentMessage"]
