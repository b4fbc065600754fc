"""The dead-letter producer: bad messages go out with their original bytes and the reason in headers.

A dead letter too large for the dead-letter topic (a message the event topic took, because it allows
bigger ones) goes out truncated, never not at all: the headers say so and carry the original size
and the SHA-256 of the original bytes, beside the source coordinates, so the message can be found
and checked in the event topic while it is retained.
"""

from __future__ import annotations

import hashlib
from typing import Any

import kafka
import kafka.errors

from lineage.contract.events import DeadLetter
from lineage.errors import BrokerError, BrokerUnavailableError
from lineage.settings import Settings
from lineage.transport.kafka.admin import topic_max_message_bytes
from lineage.transport.kafka.connection import client_options, refusal, wait_for_broker

__all__ = ["DeadLetterProducer"]

#: the producer's largest request (kafka-python's default max_request_size, stated so it is ours)
MAX_REQUEST_BYTES = 1_048_576
#: room kept for what a record and its batch add around key, value and headers (batch header 61
#: bytes, record overhead up to 21, a varint length per header), with a wide margin
_OVERHEAD_BYTES = 1024
_PER_HEADER_BYTES = 16
#: a reason quoting a huge value is cut to this many characters when the letter must shrink
_REASON_CHARS = 1000


class DeadLetterProducer:
    """Sends dead letters to the dead-letter topic: original key and bytes, reason in the headers."""

    def __init__(self, settings: Settings) -> None:
        """Connect, or raise ``BrokerUnavailableError`` within ``settings.connect_timeout_s``.

        Raise ``BrokerError`` at once if the dead-letter topic does not exist: kafka-python would
        otherwise wait for its metadata on the first send, then fail with a timeout.
        """
        self._settings = settings
        wait_for_broker(settings)
        topic_limit = topic_max_message_bytes(settings, settings.dead_letter_topic, operation="write")
        if topic_limit is None:
            raise BrokerError(
                f"the dead-letter topic {settings.dead_letter_topic} does not exist at {settings.bootstrap_servers}; "
                "create it (or set LINEAGE_DEAD_LETTER_TOPIC to one that does)"
            )
        #: the largest dead letter the producer sends and the topic takes
        self.max_bytes = min(MAX_REQUEST_BYTES, topic_limit)
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


def fit(letter: DeadLetter, max_bytes: int) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """The key, value and headers to send for ``letter``, cut to fit in ``max_bytes`` if need be.

    As it is when it fits. Otherwise the value is truncated and headers say so: ``lineage.truncated``,
    ``lineage.original.size`` and ``lineage.original.sha256`` (of the original value). If the
    original headers or key alone leave no room, they are dropped too, and counted in headers.
    """
    ours = _our_headers(letter, letter.reason)
    headers = [*letter.headers, *ours]
    if _size(letter.key, letter.value, headers) <= max_bytes:
        return letter.key, letter.value, headers
    original = letter.value or b""
    ours = [
        *_our_headers(letter, letter.reason[:_REASON_CHARS]),
        ("lineage.truncated", b"true"),
        ("lineage.original.size", str(len(original)).encode()),
        ("lineage.original.sha256", hashlib.sha256(original).hexdigest().encode()),
    ]
    key, headers = letter.key, [*letter.headers, *ours]
    if _size(key, b"", headers) > max_bytes:  # the message's own headers are what is too large
        headers = [*ours, ("lineage.original.headers.dropped", str(len(letter.headers)).encode())]
    if _size(key, b"", headers) > max_bytes:  # and its key too
        headers.append(("lineage.original.key.dropped", str(len(key or b"")).encode()))
        key = None
    room = max(max_bytes - _size(key, b"", headers), 0)
    return key, original[:room], headers


def _our_headers(letter: DeadLetter, reason: str) -> list[tuple[str, bytes]]:
    headers = [
        ("lineage.reason", reason.encode("utf-8")),
        ("lineage.source.topic", letter.source.encode("utf-8")),
        ("lineage.source.partition", str(letter.partition).encode()),
        ("lineage.source.offset", str(letter.offset).encode()),
    ]
    if letter.field is not None:
        headers.append(("lineage.field", letter.field.encode("utf-8")))
    return headers


def _size(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    """An upper bound on the bytes a record takes in its own batch."""
    return (
        _OVERHEAD_BYTES
        + len(key or b"")
        + len(value or b"")
        + sum(len(k.encode("utf-8")) + len(v) + _PER_HEADER_BYTES for k, v in headers)
    )
