"""The event producer: sends encoded events with acks from all in-sync replicas and idempotence."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import kafka
import kafka.errors

from lineage.errors import BrokerError, BrokerUnavailableError, DeliveryError
from lineage.settings import Settings
from lineage.transport.kafka.connection import client_options, refusal, wait_for_broker

__all__ = ["DeliveryReceipt", "KafkaDelivery", "KafkaEventSink"]


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """Where the broker stored an event."""

    topic: str
    partition: int
    offset: int


class KafkaDelivery:
    """A pending send; ``result()`` waits for the broker's acknowledgement."""

    __slots__ = ("event_id", "future", "settings", "topic")

    def __init__(self, future: Any, event_id: str, topic: str, settings: Settings | None = None) -> None:
        """Wrap kafka-python's future; ``settings`` name the principal in an ACL refusal."""
        self.future = future
        self.event_id = event_id
        self.topic = topic
        self.settings = settings

    def result(self, timeout_s: float | None = None) -> DeliveryReceipt:
        """Wait for the acknowledgement; raise ``DeliveryError`` if the broker did not take it."""
        try:
            meta = self.future.get(timeout=timeout_s)
        except kafka.errors.KafkaTimeoutError as exc:
            if not self.future.is_done:
                raise DeliveryError(
                    self.event_id, self.topic, f"no acknowledgement within {timeout_s} s yet (it may still arrive)"
                ) from exc
            raise DeliveryError(self.event_id, self.topic, str(exc)) from exc
        except kafka.errors.KafkaError as exc:
            refused = refusal(exc, self.settings, operation="write", topic=self.topic) if self.settings else None
            raise refused or DeliveryError(self.event_id, self.topic, str(exc)) from exc
        return DeliveryReceipt(meta.topic, meta.partition, meta.offset)


class KafkaEventSink:
    """Sends encoded events to Kafka with acks from all in-sync replicas and idempotence."""

    def __init__(self, settings: Settings) -> None:
        """Connect, or raise ``BrokerUnavailableError`` within ``settings.connect_timeout_s``."""
        self._settings = settings
        self._pending: deque[KafkaDelivery] = deque()
        bound_ms = int(settings.connect_timeout_s * 1000)
        wait_for_broker(settings)
        try:
            self._producer = kafka.KafkaProducer(
                **client_options(settings),
                acks="all",
                enable_idempotence=True,
                linger_ms=settings.linger_ms,
                batch_size=256 * 1024,
                # kafka-python waits separately for bootstrap, for metadata and for buffer space:
                # bound each so a dead broker fails within the promised time, never hangs.
                max_block_ms=bound_ms,
                request_timeout_ms=min(bound_ms, int(settings.delivery_timeout_s * 1000)),
                delivery_timeout_ms=int(settings.delivery_timeout_s * 1000),
            )
        except (kafka.errors.KafkaTimeoutError, kafka.errors.KafkaConnectionError) as exc:
            raise BrokerUnavailableError(settings.bootstrap_servers, settings.connect_timeout_s, str(exc)) from exc
        except kafka.errors.KafkaError as exc:
            raise refusal(exc, settings, operation="write") or BrokerError(
                f"could not start a producer for {settings.bootstrap_servers}: {exc}"
            ) from exc

    def send(self, topic: str, key: bytes, value: bytes, event_id: str) -> KafkaDelivery:
        """Queue one message; a failure shows in ``failures()`` once the broker has answered."""
        try:
            future = self._producer.send(topic, value=value, key=key)
        except kafka.errors.KafkaTimeoutError as exc:
            raise DeliveryError(
                event_id,
                topic,
                f"no metadata for the topic within {self._settings.connect_timeout_s:g} s "
                f"(does it exist? is the broker up?): {exc}",
            ) from exc
        except kafka.errors.KafkaError as exc:
            raise refusal(exc, self._settings, operation="write", topic=topic) or DeliveryError(
                event_id, topic, str(exc)
            ) from exc
        delivery = KafkaDelivery(future, event_id, topic, self._settings)
        self._pending.append(delivery)
        return delivery

    def failures(self) -> list[DeliveryError]:
        """Failed deliveries among those completed in send order (cheaper than a callback per message)."""
        pending = self._pending
        failed = []
        while pending and pending[0].future.is_done:
            done = pending.popleft()
            if done.future.failed():
                exc = done.future.exception
                refused = refusal(exc, self._settings, operation="write", topic=done.topic)
                failed.append(DeliveryError(done.event_id, done.topic, str(refused or exc)))
        return failed

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every queued message is acknowledged or failed."""
        try:
            self._producer.flush(timeout=timeout_s)
        except kafka.errors.KafkaTimeoutError as exc:
            raise BrokerError(f"messages still unacknowledged after {timeout_s} s: {exc}") from exc

    def close(self, timeout_s: float | None = None) -> None:
        """Flush and release the connection."""
        try:
            self._producer.close(timeout=timeout_s)
        except kafka.errors.KafkaError as exc:
            raise BrokerError(f"messages still unacknowledged when closing: {exc}") from exc
