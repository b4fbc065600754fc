"""A dead letter as a Kafka record: its key, value and headers, cut to fit the dead-letter topic.

Client-neutral, so both producers (kafka-python's and confluent-kafka's) send the same record. A
dead letter too large for the dead-letter topic (a message the event topic took, because it allows
bigger ones) goes out truncated, never not at all: the headers say so and carry the original size
and the SHA-256 of the original bytes, beside the source coordinates, so the message can be found
and checked in the event topic while it is retained.
"""

from __future__ import annotations

import hashlib

from lineage.contract.events import DeadLetter

__all__ = ["MAX_REQUEST_BYTES", "fit"]

#: the producers' largest request (kafka-python's default max_request_size, stated so it is ours)
MAX_REQUEST_BYTES = 1_048_576
#: room kept for what a record and its batch add around key, value and headers (batch header 61
#: bytes, record overhead up to 21, a varint length per header), with a wide margin
_OVERHEAD_BYTES = 1024
_PER_HEADER_BYTES = 16
#: a reason quoting a huge value is cut to this many characters when the letter must shrink
_REASON_CHARS = 1000


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
