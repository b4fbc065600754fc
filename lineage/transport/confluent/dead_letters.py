"""The dead-letter producer on confluent-kafka: the same records as kafka-python's, through librdkafka.

What a dead letter looks like, and how one too large is cut, is ``lineage.transport.letters``; the
dead-letter topic's size limit is asked once, as for kafka-python's producer (``dead_letter_room``).
"""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from lineage.contract.events import DeadLetter
from lineage.errors import BrokerError
from lineage.settings import Settings
from lineage.transport.confluent.connection import describe, refusal
from lineage.transport.confluent.producer import producer_config
from lineage.transport.kafka.dead_letters import dead_letter_room
from lineage.transport.letters import MAX_REQUEST_BYTES, fit

__all__ = ["ConfluentDeadLetterProducer"]

_POLL_S = 0.05


class ConfluentDeadLetterProducer:
    """Sends dead letters to the dead-letter topic: original key and bytes, reason in the headers."""

    def __init__(self, settings: Settings) -> None:
        """Connect, or raise ``BrokerUnavailableError`` in the connect bound; ``BrokerError`` without the topic."""
        self._settings = settings
        self._topic = settings.dead_letter_topic
        #: the largest dead letter the producer sends and the topic takes
        self.max_bytes = dead_letter_room(settings)
        config = producer_config(settings, client_suffix="-dlq") | {"message.max.bytes": MAX_REQUEST_BYTES}
        try:
            self._producer = Producer(config)
        except KafkaException as exc:
            raise BrokerError(f"could not start the dead-letter producer: {exc}") from exc
        self._failed: list[KafkaError] = []  # reported failures: every later flush raises, as with kafka-python
        self._unsent: BrokerError | None = None

    def _reported(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failed.append(error)

    def send(self, letter: DeadLetter) -> None:
        """Queue one dead letter (truncated if it is too large to send); ``flush`` makes it durable.

        A letter that could not even be queued raises here and is remembered: every later ``flush``
        raises too, so whoever flushes before writing the segment covering its offset never does.
        """
        key, value, fitted = fit(letter, self.max_bytes)
        headers: list[tuple[str, str | bytes | None]] = list(fitted)
        waited = 0.0
        while True:
            try:
                self._producer.produce(self._topic, value, key, headers=headers, on_delivery=self._reported)
                break
            except BufferError:  # the local queue is full: make room, within the connect bound
                if waited >= self._settings.connect_timeout_s:
                    detail = f"no buffer space within {self._settings.connect_timeout_s:g} s"
                    self._unsent = self._unqueued(letter, detail)
                    raise self._unsent from None
                self._producer.poll(_POLL_S)
                waited += _POLL_S
            except KafkaException as exc:
                error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                refused = refusal(error, self._settings, operation="write", topic=self._topic) if error else None
                self._unsent = refused or self._unqueued(letter, describe(error) if error else str(exc))
                raise self._unsent from exc
        self._producer.poll(0)

    def _unqueued(self, letter: DeadLetter, detail: str) -> BrokerError:
        return BrokerError(
            f"a dead letter (partition {letter.partition}, offset {letter.offset}) could not be queued for "
            f"{self._topic}: {detail}"
        )

    def flush(self) -> None:
        """Wait until every queued dead letter is acknowledged; raise ``BrokerError`` if one was not.

        A failed dead letter stays counted, so every later ``flush`` raises too: the consumer must
        not write the segment covering its offset, or the bad message would be lost for good.
        """
        if self._unsent is not None:
            raise self._unsent
        left = self._producer.flush(self._settings.delivery_timeout_s)
        if left:
            raise BrokerError(f"dead letters unacknowledged after {self._settings.delivery_timeout_s} s: {left} left")
        if self._failed:
            refused = refusal(self._failed[0], self._settings, operation="write", topic=self._topic)
            if refused is not None:  # terminal: retrying the flush cannot help until an operator grants the right
                raise refused
            raise BrokerError(
                f"{len(self._failed)} dead letter(s) were not delivered to {self._topic}: {describe(self._failed[0])}"
            )

    def close(self) -> None:
        """Flush and disconnect; raise ``BrokerError`` if dead letters were still unacknowledged."""
        left = self._producer.flush(self._settings.delivery_timeout_s)
        self._producer.purge(in_queue=True, in_flight=True, blocking=True)
        self._producer.close()  # its threads and connections end now, not when the object is collected
        if left:
            raise BrokerError(f"closing the dead-letter producer: {left} dead letter(s) unacknowledged")
