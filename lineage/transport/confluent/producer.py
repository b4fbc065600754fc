"""The event producer on confluent-kafka (librdkafka): acks from all in-sync replicas, idempotence.

The same promises as ``lineage.transport.kafka.producer.KafkaEventSink``, kept differently:

- librdkafka's C producer batches and sends on its own threads; a ``send`` costs a few microseconds
  of Python where kafka-python's costs ~20 (issue 21).
- Every delivery resolves within ``settings.delivery_timeout_s`` (librdkafka's ``message.timeout.ms``,
  and our own deadline on top): acknowledged, or failed with its event id.
- librdkafka reconnects by itself and keeps what was queued during an outage, so a send is not
  refused while the broker is away: an event the broker takes back within the delivery timeout is
  delivered, one it does not is reported as failed (and spooled, with a spool). A producer that
  reports a fatal error (its idempotence state lost) is replaced by a fresh one at the next send.
- Keys go to partitions by murmur2, as kafka-python and the Java client place them, so one
  subject's events share a partition whichever client sent them (librdkafka's own default, a
  CRC32 hash, would split them).

Delivery reports are served by ``poll``: every ``send`` and ``failures`` call polls without waiting,
and ``result``/``flush`` poll while they wait.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from lineage.errors import BrokerError, DeliveryError
from lineage.settings import Settings
from lineage.transport.confluent.connection import client_config, describe, log, refusal
from lineage.transport.deadlines import DeadlineDelivery, flush_pending, take_failed
from lineage.transport.kafka.connection import wait_for_broker
from lineage.transport.sink import Headers, Receipt, Undelivered

__all__ = ["ConfluentDelivery", "ConfluentEventSink", "producer_config"]

# The longest single wait inside poll(): short, so a waiting caller sees its own deadline promptly.
_POLL_S = 0.05
# send() and failures() serve delivery reports at most this often: a poll per call was a fifth of a
# busy emitter's time (py-spy), while a caller a millisecond apart still has every report served.
_SERVE_EVERY_S = 0.001
# Same batch size as the kafka-python producer, so the two are measured alike.
_BATCH_BYTES = 256 * 1024


def producer_config(settings: Settings, *, client_suffix: str = "") -> dict[str, Any]:
    """The producer properties: idempotent, acks=all, murmur2 keys, bounded by the delivery timeout."""
    return client_config(settings, client_suffix=client_suffix) | {
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": settings.linger_ms,
        "batch.size": _BATCH_BYTES,
        "partitioner": "murmur2_random",  # kafka-python's and Java's placement of a key (None: random)
        "message.timeout.ms": int(settings.delivery_timeout_s * 1000),
    }


class ConfluentDelivery(DeadlineDelivery):
    """A pending send; ``result()`` polls for the broker's acknowledgement, at most until its deadline."""

    __slots__ = ("failure", "message", "sink")

    def __init__(
        self,
        sink: ConfluentEventSink,
        event_id: str,
        topic: str,
        key: bytes,
        value: bytes,
        timeout_s: float,
        headers: Headers = (),
    ) -> None:
        """Keep the bytes so an undelivered event can be sent again; the sink polls for the outcome."""
        # named, not super(): a third cheaper, and made once per event sent
        DeadlineDelivery.__init__(self, event_id, topic, key, value, timeout_s, headers)
        self.sink = sink
        self.message: Message | None = None  # librdkafka's report of the stored message, once acknowledged
        self.failure: KafkaError | None = None  # or why it failed

    def reported(self, error: KafkaError | None, message: Message) -> None:
        """Take the delivery report librdkafka hands over, called from ``poll``."""
        if error is None:
            self.message = message
            self.acked = True
        else:
            self.failure = error

    @property
    def done(self) -> bool:
        """Whether librdkafka reported an outcome."""
        return self.message is not None or self.failure is not None

    def acknowledged(self) -> bool:
        """Whether librdkafka reported the message stored."""
        return self.message is not None

    def refused(self) -> BrokerError | None:
        """The broker's refusal (bad credentials, an ACL) behind a failed delivery, as our error; else None."""
        if self.expired or self.failure is None:
            return None
        return refusal(self.failure, self.sink.settings, operation="write", topic=self.topic)

    def reason(self) -> str:
        """Why librdkafka says it failed, in one line."""
        return self.sink.reason(self.failure) if self.failure is not None else "no outcome reported"

    def wait(self, seconds: float) -> None:
        """Serve delivery reports for a short while (this one's among them, once it comes)."""
        self.sink.poll(min(seconds, _POLL_S))

    def receipt(self) -> Receipt:
        """Where the broker stored the message."""
        assert self.message is not None
        return _Receipt(self.message)


class _Receipt:
    """Where the broker stored an event, read from librdkafka's report when asked."""

    __slots__ = ("_message",)

    def __init__(self, message: Message) -> None:
        self._message = message

    @property
    def topic(self) -> str:
        """The topic written to."""
        return self._message.topic() or ""

    @property
    def partition(self) -> int:
        """The partition written to."""
        return self._message.partition() or 0

    @property
    def offset(self) -> int:
        """The message's offset in its partition."""
        offset = self._message.offset()
        return -1 if offset is None else offset


class ConfluentEventSink:
    """Sends encoded events to Kafka through librdkafka, with acks from all in-sync replicas and idempotence."""

    def __init__(self, settings: Settings) -> None:
        """Connect, or raise ``BrokerUnavailableError`` (or a refusal naming the setting) within the connect bound."""
        self.settings = settings
        self._timeout_s = settings.delivery_timeout_s
        self._pending: deque[ConfluentDelivery] = deque()
        self._closed = False
        self._topics: set[str] = set()  # topics whose metadata this sink has seen
        self._fatal: KafkaError | None = None  # the producer must be replaced (its idempotence state is lost)
        self._last_error = ""  # librdkafka's latest complaint, to explain a timed-out delivery
        self._next_serve = 0.0  # when send() and failures() next serve delivery reports
        self._headers: Headers = ()  # the headers of the last send, and their list for librdkafka
        self._header_list: list[tuple[str, str | bytes | None]] = []
        wait_for_broker(settings)  # the shared checks: a broker answering, our TLS trust, our SASL login
        self._producer = self._open()

    def _open(self) -> Producer:
        try:
            return Producer(producer_config(self.settings) | {"error_cb": self._on_error})
        except KafkaException as exc:
            error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            raise BrokerError(
                f"could not start a producer for {self.settings.bootstrap_servers}: "
                f"{describe(error) if error is not None else exc}"
            ) from exc

    def _on_error(self, error: KafkaError) -> None:
        """Note an error about the client as a whole (brokers down, a login refused), from ``poll``."""
        self._last_error = describe(error)
        if error.fatal():
            self._fatal = error
        log.warning("kafka client: %s", self._last_error)

    def reason(self, error: KafkaError) -> str:
        """Why a delivery failed, in one line; a timeout says what librdkafka last complained of."""
        if error.code() == KafkaError._MSG_TIMED_OUT:
            why = f" ({self._last_error})" if self._last_error else ""
            return f"not acknowledged within the delivery timeout of {self._timeout_s:g} s{why}"
        return describe(error)

    def poll(self, timeout_s: float = 0.0) -> None:
        """Serve delivery reports and errors, waiting at most ``timeout_s`` for one (closed: only wait)."""
        if self._closed:  # its producer is closed; what it did not report is failed by its deadline
            time.sleep(timeout_s)
            return
        self._producer.poll(timeout_s)

    def send(self, topic: str, key: bytes, value: bytes, event_id: str, headers: Headers = ()) -> ConfluentDelivery:
        """Queue one message; a failure shows in ``failures()`` once known, at the latest at its deadline."""
        if self._closed:
            raise DeliveryError(event_id, topic, "the emitter is closed")
        if self._fatal is not None:
            self._replace()
        if topic not in self._topics:
            self._learn(topic, event_id)
        delivery = ConfluentDelivery(self, event_id, topic, key, value, self._timeout_s, headers)
        producer = self._producer
        try:
            if headers:
                # librdkafka takes a list: made once per emitter's (immutable) headers tuple, afresh
                # from anything else, which its caller may change between sends
                if headers is not self._headers:
                    listed: list[tuple[str, str | bytes | None]] = list(headers)
                    if type(headers) is tuple:
                        self._headers, self._header_list = headers, listed
                else:
                    listed = self._header_list
                producer.produce(topic, value, key, headers=listed, on_delivery=delivery.reported)
            else:
                _produce(producer, delivery)
        except BufferError:
            self._wait_for_room(delivery)
        except KafkaException as exc:
            raise self._refused_send(exc, event_id, topic) from exc
        self._pending.append(delivery)
        self._serve()
        return delivery

    def _serve(self) -> None:
        """Serve the delivery reports that came, unless they were served less than ``_SERVE_EVERY_S`` ago."""
        now = time.monotonic()
        if now >= self._next_serve:
            self._next_serve = now + _SERVE_EVERY_S
            self._producer.poll(0)

    def _learn(self, topic: str, event_id: str) -> None:
        """Ask for ``topic``'s metadata once, as kafka-python does on a first send: a missing topic fails now.

        librdkafka would otherwise hold the messages and fail them only at their deadline, or after
        its own 30 s wait for a topic to appear.
        """
        bound = self.settings.connect_timeout_s
        try:
            found = self._producer.list_topics(topic, timeout=bound).topics.get(topic)
        except KafkaException as exc:
            raise DeliveryError(
                event_id, topic, f"no metadata for the topic within {bound:g} s (does it exist? is the broker up?)"
            ) from exc
        error = found.error if found is not None else None
        if found is None or (error is not None and error.code() in _MISSING):
            raise DeliveryError(
                event_id, topic, "no metadata for the topic: the broker does not have it (does it exist?)"
            )
        if error is not None:
            raise refusal(error, self.settings, operation="write", topic=topic) or DeliveryError(
                event_id, topic, describe(error)
            )
        self._topics.add(topic)

    def _wait_for_room(self, delivery: ConfluentDelivery) -> None:
        """The local queue is full: serve reports until there is room, for at most the connect bound."""
        end = time.monotonic() + self.settings.connect_timeout_s
        while True:
            self._producer.poll(_POLL_S)
            try:
                _produce(self._producer, delivery)
                return
            except BufferError:
                if time.monotonic() >= end:
                    raise DeliveryError(
                        delivery.event_id,
                        delivery.topic,
                        f"no buffer space within {self.settings.connect_timeout_s:g} s (is the broker up?)",
                    ) from None
            except KafkaException as exc:
                raise self._refused_send(exc, delivery.event_id, delivery.topic) from exc

    def _refused_send(self, exc: KafkaException, event_id: str, topic: str) -> BrokerError:
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        if error is None:
            return DeliveryError(event_id, topic, str(exc))
        if error.fatal():
            self._fatal = error
        return refusal(error, self.settings, operation="write", topic=topic) or DeliveryError(
            event_id, topic, describe(error)
        )

    def _replace(self) -> None:
        """Open a fresh producer (a new producer id) for one that hit a fatal error; the old one's messages fail."""
        old, self._fatal = self._producer, None
        self._producer = self._open()
        _abandon(old)

    def failures(self) -> list[Undelivered]:
        """Deliveries found failed, in send order, without waiting (reports served unless served in the last ms)."""
        if not self._closed:
            self._serve()
        failed = take_failed(self._pending, closed=self._closed)
        if not failed:  # the common case, asked before every emit: no comprehension to run
            return []
        return [Undelivered(d.topic, d.key, d.value, d.event_id, error, d.headers) for d, error in failed]

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
            self._closed = True
            _abandon(self._producer)


def _produce(producer: Producer, delivery: ConfluentDelivery) -> None:
    """Hand one message, its headers too, to librdkafka (raises ``BufferError`` when its queue is full)."""
    if delivery.headers:
        producer.produce(
            delivery.topic, delivery.value, delivery.key, headers=list(delivery.headers), on_delivery=delivery.reported
        )
    else:  # no headers (a resent event of an older version, the dead letters' path): the call as before
        producer.produce(delivery.topic, delivery.value, delivery.key, on_delivery=delivery.reported)


def _abandon(producer: Producer) -> None:
    """Drop what ``producer`` still holds (its reports fail those deliveries), then stop its threads and sockets.

    Closed at once rather than left to the garbage collector: librdkafka's threads and connections
    would otherwise outlive a closed sink for as long as something refers to it.
    """
    try:
        producer.purge(in_queue=True, in_flight=True, blocking=True)
        producer.poll(0)  # serve the purged messages' reports: their deliveries fail now, not at their deadline
        producer.close()
    except (KafkaException, RuntimeError) as exc:  # already closed, or failed fatally: nothing left to purge
        log.debug("closing a producer: %s", exc)


_MISSING = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC)
