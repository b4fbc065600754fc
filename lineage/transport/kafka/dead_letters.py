"""The dead-letter producer: bad messages go out with their original bytes and the reason in headers."""

from __future__ import annotations

from typing import Any

import kafka
import kafka.errors

from lineage.contract.events import DeadLetter
from lineage.errors import BrokerError, BrokerUnavailableError
from lineage.settings import Settings
from lineage.transport.kafka.connection import client_options, refusal, wait_for_broker

__all__ = ["DeadLetterProducer"]


class DeadLetterProducer:
    """Sends dead letters to the dead-letter topic: original key and bytes, reason in the headers."""

    def __init__(self, settings: Settings) -> None:
        """Connect, or raise ``BrokerUnavailableError`` within ``settings.connect_timeout_s``."""
        self._settings = settings
        wait_for_broker(settings)
        try:
            self._producer = kafka.KafkaProducer(
                **client_options(settings, client_suffix="-dlq"),
                acks="all",
                enable_idempotence=True,
                linger_ms=settings.linger_ms,
                max_block_ms=int(settings.connect_timeout_s * 1000),
                delivery_timeout_ms=int(settings.delivery_timeout_s * 1000),
                request_timeout_ms=min(int(settings.connect_timeout_s * 1000), int(settings.delivery_timeout_s * 1000)),
            )
        except kafka.errors.KafkaError as exc:
            raise refusal(exc, settings, operation="write", topic=settings.dead_letter_topic) or BrokerUnavailableError(
                settings.bootstrap_servers, settings.connect_timeout_s, str(exc)
            ) from exc
        self._futures: list[Any] = []

    def send(self, letter: DeadLetter) -> None:
        """Queue one dead letter; ``flush`` makes it durable."""
        headers = [
            *letter.headers,
            ("lineage.reason", letter.reason.encode("utf-8")),
            ("lineage.source.topic", letter.source.encode("utf-8")),
            ("lineage.source.partition", str(letter.partition).encode()),
            ("lineage.source.offset", str(letter.offset).encode()),
        ]
        if letter.field is not None:
            headers.append(("lineage.field", letter.field.encode("utf-8")))
        try:
            future = self._producer.send(
                self._settings.dead_letter_topic, key=letter.key, value=letter.value, headers=headers
            )
        except kafka.errors.KafkaError as exc:
            topic = self._settings.dead_letter_topic
            raise refusal(exc, self._settings, operation="write", topic=topic) or BrokerError(
                f"could not queue a dead letter for {topic}: {exc}"
            ) from exc
        self._futures.append(future)

    def flush(self) -> None:
        """Wait until every queued dead letter is acknowledged; raise ``BrokerError`` if one was not.

        A failed dead letter stays queued, so every later ``flush`` raises too: the consumer must
        not write the segment covering its offset, or the bad message would be lost for good.
        """
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
