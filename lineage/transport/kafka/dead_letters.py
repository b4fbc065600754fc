"""The dead-letter producer: bad messages go out with their original bytes and the reason in headers.

What a dead letter looks like, and how one too large is cut, is ``lineage.transport.letters``.
"""

from __future__ import annotations

from typing import Any

import kafka
import kafka.errors

from lineage.contract.events import DeadLetter
from lineage.errors import BrokerError, BrokerUnavailableError
from lineage.settings import Settings
from lineage.transport.kafka.admin import topic_max_message_bytes
from lineage.transport.kafka.connection import client_options, refusal, wait_for_broker
from lineage.transport.letters import MAX_REQUEST_BYTES, fit

__all__ = ["DeadLetterProducer", "dead_letter_room", "fit"]


def dead_letter_room(settings: Settings) -> int:
    """The largest dead letter a producer may send: the request bound, or less if the topic takes less.

    Raise ``BrokerError`` at once if the dead-letter topic does not exist: a producer would
    otherwise wait for its metadata on the first send, then fail with a timeout. Shared by both
    clients' dead-letter producers (asked with kafka-python's admin client).
    """
    wait_for_broker(settings)
    topic_limit = topic_max_message_bytes(settings, settings.dead_letter_topic, operation="write")
    if topic_limit is None:
        raise BrokerError(
            f"the dead-letter topic {settings.dead_letter_topic} does not exist at {settings.bootstrap_servers}; "
            "create it (or set LINEAGE_DEAD_LETTER_TOPIC to one that does)"
        )
    return min(MAX_REQUEST_BYTES, topic_limit)


class DeadLetterProducer:
    """Sends dead letters to the dead-letter topic: original key and bytes, reason in the headers."""

    def __init__(self, settings: Settings) -> None:
        """Connect, or raise ``BrokerUnavailableError`` within ``settings.connect_timeout_s``.

        Raise ``BrokerError`` at once if the dead-letter topic does not exist (``dead_letter_room``).
        """
        self._settings = settings
        #: the largest dead letter the producer sends and the topic takes
        self.max_bytes = dead_letter_room(settings)
        try:
            self._producer = kafka.KafkaProducer(
                **client_options(settings, client_suffix="-dlq"),
                acks="all",
                enable_idempotence=True,
                linger_ms=settings.linger_ms,
                max_request_size=MAX_REQUEST_BYTES,
                max_block_ms=int(settings.connect_timeout_s * 1000),
                delivery_timeout_ms=int(settings.delivery_timeout_s * 1000),
                request_timeout_ms=min(int(settings.connect_timeout_s * 1000), int(settings.delivery_timeout_s * 1000)),
            )
        except kafka.errors.KafkaError as exc:
            raise refusal(exc, settings, operation="write", topic=settings.dead_letter_topic) or BrokerUnavailableError(
                settings.bootstrap_servers, settings.connect_timeout_s, str(exc)
            ) from exc
        self._futures: list[Any] = []
        self._unsent: BrokerError | None = None

    def send(self, letter: DeadLetter) -> None:
        """Queue one dead letter (truncated if it is too large to send); ``flush`` makes it durable.

        A letter that could not even be queued raises here and is remembered: every later ``flush``
        raises too, so whoever flushes before writing the segment covering its offset never does.
        """
        key, value, headers = fit(letter, self.max_bytes)
        try:
            future = self._producer.send(self._settings.dead_letter_topic, key=key, value=value, headers=headers)
        except kafka.errors.KafkaError as exc:
            topic = self._settings.dead_letter_topic
            self._unsent = refusal(exc, self._settings, operation="write", topic=topic) or BrokerError(
                f"a dead letter (partition {letter.partition}, offset {letter.offset}) could not be queued for "
                f"{topic}: {exc}"
            )
            raise self._unsent from exc
        self._futures.append(future)

    def flush(self) -> None:
        """Wait until every queued dead letter is acknowledged; raise ``BrokerError`` if one was not.

        A failed dead letter stays queued, so every later ``flush`` raises too: the consumer must
        not write the segment covering its offset, or the bad message would be lost for good.
        """
        if self._unsent is not None:
            raise self._unsent
        try:
            self._producer.flush(timeout=self._settings.delivery_timeout_s)
        except kafka.errors.KafkaError as exc:
            raise BrokerError(
                f"dead letters unacknowledged after {self._settings.delivery_timeout_s} s: {exc}"
            ) from exc
        failed = [f for f in self._futures if f.failed()]
        if failed:
            topic = self._settings.dead_letter_topic
            refused = refusal(failed[0].exception, self._settings, operation="write", topic=topic)
            if refused is not None:  # terminal: retrying the flush cannot help until an operator grants the right
                raise refused
            raise BrokerError(f"{len(failed)} dead letter(s) were not delivered to {topic}: {failed[0].exception}")
        self._futures = []

    def close(self) -> None:
        """Flush and disconnect."""
        try:
            self._producer.close(timeout=self._settings.delivery_timeout_s)
        except kafka.errors.KafkaError as exc:
            raise BrokerError(f"closing the dead-letter producer: {exc}") from exc
