"""The event producer: sends encoded events with acks from all in-sync replicas and idempotence.

Every send resolves within ``settings.delivery_timeout_s``: acknowledged, or failed with its event id.
kafka-python (3.0.12) does not guarantee that on its own: after a broker is killed for longer than the
delivery timeout, its idempotent producer expires some batches, then stops sending for good and the
rest of its futures never complete, even once the broker is back (measured: 40,005 of 50,000 left
pending). So each delivery carries its own deadline, and a producer that lost a delivery to a timeout
is closed (its pending futures fail) and replaced by a fresh one, with a new producer id.

The replacement is opened by a background thread, one attempt a second until one works: sends in
the meantime fail at once ("no broker answers"), however often they come, and the first send after
the broker answers again finds a producer ready. Why not in the caller: opening a producer can take
up to ``connect_timeout_s`` (bootstrap, then the topic's metadata) against a broker that accepts
connections but is still starting, and an emit call must not stall that long; and when the attempt
waited for a call, a caller sending more often than the backoff pushed the next attempt back with
every refused call and never reconnected (issue 21).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import kafka
import kafka.errors

from lineage.errors import BrokerError, BrokerUnavailableError, DeliveryError
from lineage.settings import Settings
from lineage.transport.deadlines import DeadlineDelivery, flush_pending, take_failed
from lineage.transport.kafka.connection import client_options, refusal, wait_for_broker
from lineage.transport.sink import Headers, Undelivered

__all__ = ["DeliveryReceipt", "KafkaDelivery", "KafkaEventSink"]

# After a failed attempt to reach the broker again, the next one starts this long after: a dead broker
# costs one quick connection check a second, and a broker that is back is found within about a second.
_REOPEN_BACKOFF_S = 1.0


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """Where the broker stored an event."""

    topic: str
    partition: int
    offset: int


class KafkaDelivery(DeadlineDelivery):
    """A pending send; ``result()`` waits for the broker's acknowledgement, at most until its deadline."""

    __slots__ = ("future", "producer", "settings")

    def __init__(
        self,
        future: Any,
        event_id: str,
        topic: str,
        key: bytes,
        value: bytes,
        timeout_s: float,
        settings: Settings | None = None,
        producer: object | None = None,
        headers: Headers = (),
    ) -> None:
        """Wrap kafka-python's future; keep the bytes so an undelivered event can be sent again.

        ``settings`` name the principal when the broker's ACLs refuse the write; ``producer`` is the
        one that queued it, so a late failure of a replaced producer does not condemn its successor.
        """
        super().__init__(event_id, topic, key, value, timeout_s, headers)
        self.settings = settings
        self.producer = producer
        self.future = future

    @property
    def done(self) -> bool:
        """Whether kafka-python's future is resolved."""
        return bool(self.future.is_done)

    def acknowledged(self) -> bool:
        """Whether the future succeeded."""
        return bool(self.future.is_done and self.future.succeeded())

    def refused(self) -> BrokerError | None:
        """The broker's refusal (bad credentials, an ACL) behind a failed delivery, as our error; else None."""
        if self.settings is None or self.expired or not self.future.is_done or self.future.succeeded():
            return None
        return refusal(self.future.exception, self.settings, operation="write", topic=self.topic)

    def reason(self) -> str:
        """The future's exception, in one line."""
        return _reason(self.future)

    def wait(self, seconds: float) -> None:
        """Wait on the future; its outcome is read by the caller."""
        with contextlib.suppress(kafka.errors.KafkaError):
            self.future.get(timeout=seconds)

    def receipt(self) -> DeliveryReceipt:
        """Where the broker stored the message."""
        meta = self.future.value
        return DeliveryReceipt(meta.topic, meta.partition, meta.offset)


def _reason(future: Any) -> str:
    exc = future.exception
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _Producer(kafka.KafkaProducer):  # type: ignore[misc]
    """kafka-python's producer, made safe to close when the broker is gone.

    Its ``close()`` flushes first and raises ``KafkaTimeoutError`` if records remain, before stopping
    its sender thread or marking itself closed; its ``__del__`` and atexit hook then call ``close()``
    again and print a kafka-python traceback at the user. Here close never raises: records still
    pending are dropped (their futures fail), which the sink reports by event id.
    """

    def close(self, timeout: float | None = None, null_logger: bool = False) -> None:
        """Close; if records are still unacknowledged after ``timeout``, stop without sending them."""
        try:
            super().close(timeout=timeout, null_logger=null_logger)
        except kafka.errors.KafkaError:
            self._force_stop()

    def _force_stop(self) -> None:
        sender = getattr(self, "_sender", None)
        if sender is not None:
            sender.force_close()  # its thread aborts the incomplete batches: their futures fail
            sender.join(5.0)
        metrics = getattr(self, "_metrics", None)
        if metrics is not None:
            metrics.close()
        self._closed = True

    def __del__(self) -> None:
        """Nothing kafka-python raises while the garbage collector closes the producer reaches the user."""
        with contextlib.suppress(Exception):
            self.close(timeout=0, null_logger=True)


class KafkaEventSink:
    """Sends encoded events to Kafka with acks from all in-sync replicas and idempotence."""

    def __init__(self, settings: Settings) -> None:
        """Connect, or raise ``BrokerUnavailableError`` within ``settings.connect_timeout_s``."""
        self._settings = settings
        self._timeout_s = settings.delivery_timeout_s
        self._pending: deque[KafkaDelivery] = deque()
        self._closed = False
        # The reconnecting thread and the caller's thread both replace the producer: this lock makes
        # "closed", "the producer" and "a reconnect under way" change together.
        self._lock = threading.Lock()
        self._reconnector: threading.Thread | None = None
        self._stop = threading.Event()  # wakes the reconnecting thread when the sink closes
        self._unreachable = f"no broker answers at {settings.bootstrap_servers}"  # why sends fail meanwhile
        self._topics: set[str] = set()  # topics sent to: a fresh producer learns their partitions first
        wait_for_broker(settings)
        self._producer: _Producer | None = self._open()

    def _open(self) -> _Producer:
        settings = self._settings
        bound_ms = int(settings.connect_timeout_s * 1000)
        delivery_ms = int(settings.delivery_timeout_s * 1000)
        # kafka-python refuses delivery_timeout_ms < linger_ms + request_timeout_ms: a delivery timeout
        # at or below the connect timeout (5 s and 10 s, say) must shorten the request timeout too.
        request_ms = max(1, min(bound_ms, delivery_ms - settings.linger_ms))
        try:
            return _Producer(
                **client_options(settings),
                acks="all",
                enable_idempotence=True,
                linger_ms=settings.linger_ms,
                batch_size=256 * 1024,
                # kafka-python waits separately for bootstrap, for metadata and for buffer space:
                # bound each so a dead broker fails within the promised time, never hangs.
                max_block_ms=bound_ms,
                request_timeout_ms=request_ms,
                delivery_timeout_ms=max(delivery_ms, settings.linger_ms + request_ms),
            )
        except (kafka.errors.KafkaTimeoutError, kafka.errors.KafkaConnectionError) as exc:
            raise BrokerUnavailableError(settings.bootstrap_servers, settings.connect_timeout_s, str(exc)) from exc
        except kafka.errors.KafkaError as exc:
            raise refusal(exc, settings, operation="write") or BrokerError(
                f"could not start a producer for {settings.bootstrap_servers}: {exc}"
            ) from exc

    def _unavailable(self, event_id: str, topic: str) -> DeliveryError:
        """The error of a send while there is no producer; makes sure a reconnect is under way."""
        if self._closed:
            return DeliveryError(event_id, topic, "the emitter is closed")
        if self._reconnector is None:
            self._reconnect_in_background()
        return DeliveryError(event_id, topic, self._unreachable)

    def _reconnect_in_background(self) -> None:
        """Start the thread that opens a fresh producer, unless one runs already or the sink is closed."""
        with self._lock:
            if self._closed or self._producer is not None or self._reconnector is not None:
                return
            self._reconnector = threading.Thread(target=self._reconnect, name="lineage-reconnect", daemon=True)
            self._reconnector.start()

    def _reconnect(self) -> None:
        """Attempt now, then ``_REOPEN_BACKOFF_S`` after each failure, until a producer opens or the sink closes."""
        try:
            while not self._stop.is_set():
                producer = self._attempt()
                if producer is not None:
                    with self._lock:
                        if not self._closed:
                            self._producer, producer = producer, None
                            self._reconnector = None
                            return
                    producer.close(timeout=0)  # the sink closed meanwhile
                    return
                self._stop.wait(_REOPEN_BACKOFF_S)
        finally:
            with self._lock:
                if self._reconnector is threading.current_thread():
                    self._reconnector = None  # closed, or failed unexpectedly: the next send starts another

    def _attempt(self) -> _Producer | None:
        """Open a producer and learn the topics' partitions, so the next send does not wait for them; else None."""
        if not _accepts_connections(self._settings):
            self._unreachable = f"no broker answers at {self._settings.bootstrap_servers}"
            return None
        try:
            producer = self._open()
        except BrokerError as exc:
            self._unreachable = str(exc)
            return None
        for topic in list(self._topics):
            if self._stop.is_set():
                break
            # A failure here is not the attempt's: the send to that topic reports it, as on a first send.
            with contextlib.suppress(kafka.errors.KafkaError):
                producer.partitions_for(topic)
        return producer

    def send(self, topic: str, key: bytes, value: bytes, event_id: str, headers: Headers = ()) -> KafkaDelivery:
        """Queue one message; a failure shows in ``failures()`` once known, at the latest at its deadline."""
        producer = self._producer
        if producer is None:
            raise self._unavailable(event_id, topic)
        self._topics.add(topic)
        try:
            future = producer.send(topic, value=value, key=key, headers=list(headers) or None)
        except kafka.errors.KafkaTimeoutError as exc:
            raise DeliveryError(
                event_id,
                topic,
                f"no metadata for the topic or no buffer space within {self._settings.connect_timeout_s:g} s "
                f"(does it exist? is the broker up?): {exc}",
            ) from exc
        except kafka.errors.KafkaError as exc:
            raise refusal(exc, self._settings, operation="write", topic=topic) or DeliveryError(
                event_id, topic, str(exc)
            ) from exc
        delivery = KafkaDelivery(
            future, event_id, topic, key, value, self._timeout_s, self._settings, producer, headers
        )
        self._pending.append(delivery)
        return delivery

    def failures(self) -> list[Undelivered]:
        """Deliveries found failed, in send order, without waiting (cheaper than a callback per message)."""
        failed = take_failed(self._pending, closed=self._closed)
        timed_out = any(
            head.producer is self._producer
            and (head.expired or isinstance(head.future.exception, kafka.errors.KafkaTimeoutError))
            for head, _ in failed
        )
        if timed_out and self._producer is not None:
            # A delivery lost to a timeout: this producer's sequence state is suspect and kafka-python
            # may never send again (see the module's docstring). Drop it; its pending futures fail and
            # are reported here next time; a fresh producer is opened in the background.
            self._drop_producer()
        return [Undelivered(d.topic, d.key, d.value, d.event_id, error, d.headers) for d, error in failed]

    def _drop_producer(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=0)
        self._reconnect_in_background()

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every queued message is acknowledged, refused, or past its deadline.

        Never longer than the delivery timeout; raises ``BrokerError`` only if ``timeout_s`` is shorter.
        """
        flush_pending(self._pending, timeout_s)

    def close(self, timeout_s: float | None = None) -> None:
        """Flush, then release the connection; whatever was not acknowledged then fails in ``failures()``."""
        try:
            self.flush(timeout_s)
        finally:
            with self._lock:
                self._closed = True
                producer, self._producer = self._producer, None
                reconnector = self._reconnector
            self._stop.set()
            if reconnector is not None:  # an attempt under way ends within the connect timeout
                reconnector.join(self._settings.connect_timeout_s)
            if producer is not None:
                everything_done = all(d.future.is_done for d in self._pending)
                producer.close(timeout=1.0 if everything_done else 0)


def _accepts_connections(settings: Settings) -> bool:
    """Whether some bootstrap server accepts a TCP connection now (a bounded, quick check)."""
    for server in settings.bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=1.0).close()
            return True
        except (OSError, ValueError):
            continue
    return False
