"""Asking a listener whether it speaks Kafka: one ApiVersions request in plain bytes, no client library.

A TCP connect proves little: the kernel completes it for a frozen (SIGSTOP) or hung JVM, and a TLS
listener accepts plaintext clients' connections too. A Kafka answer to an ApiVersions request
proves the broker serves; a TLS alert proves the listener wants TLS. Written with ``struct`` so
the local broker (which must not import kafka-python) and the client's connection check share it.
"""

from __future__ import annotations

import socket
import struct
import time
from enum import Enum

__all__ = ["Answer", "ask_api_versions", "kafka_answers"]

_API_VERSIONS = 18  # ApiVersions, version 0: every broker since 0.10 answers it, before any login
_CORRELATION_ID = 0x6C6E6167  # "lnag": any id; the answer must echo it
_CLIENT_ID = b"lineage-probe"
# the first bytes of a TLS record: content type (20-23: change cipher spec, alert, handshake,
# application data) then major version 3
_TLS_RECORD_TYPES = frozenset({20, 21, 22, 23})


class Answer(Enum):
    """What a listener did with an ApiVersions request."""

    KAFKA = "kafka"
    """a Kafka response echoing our correlation id"""
    TLS = "tls"
    """a TLS record (an alert): the listener expects a TLS handshake"""
    CLOSED = "closed"
    """the connection was closed with nothing said"""
    SILENT = "silent"
    """nothing within the time allowed: a frozen or overloaded broker"""
    OTHER = "other"
    """bytes that are neither: not a Kafka listener"""


def _request() -> bytes:
    body = struct.pack(">hhih", _API_VERSIONS, 0, _CORRELATION_ID, len(_CLIENT_ID)) + _CLIENT_ID
    return struct.pack(">i", len(body)) + body


def ask_api_versions(sock: socket.socket, timeout_s: float) -> Answer:
    """Send ApiVersions on the connected plaintext ``sock`` and classify the answer within ``timeout_s``.

    A Kafka answer is read to its end, so a caller may go on using the connection (a SASL login).
    """
    deadline = time.monotonic() + timeout_s
    try:
        sock.settimeout(max(timeout_s, 0.01))
        sock.sendall(_request())
        head = _read(sock, 8, deadline)
    except TimeoutError:
        return Answer.SILENT
    except OSError:  # reset by the peer: closed without a word
        return Answer.CLOSED
    if not head:
        return Answer.CLOSED
    if len(head) >= 2 and head[0] in _TLS_RECORD_TYPES and head[1] == 3:
        return Answer.TLS
    if len(head) < 8:
        return Answer.OTHER
    size, correlation = struct.unpack(">ii", head)
    if correlation != _CORRELATION_ID or not 4 <= size <= 1 << 20:
        return Answer.OTHER
    try:
        rest = _read(sock, size - 4, deadline)
    except TimeoutError:
        return Answer.SILENT
    except OSError:
        return Answer.CLOSED
    return Answer.KAFKA if len(rest) == size - 4 else Answer.CLOSED


def _read(sock: socket.socket, wanted: int, deadline: float) -> bytes:
    """Up to ``wanted`` bytes; fewer only if the peer closed. ``TimeoutError`` past the deadline."""
    data = b""
    while len(data) < wanted:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        chunk = sock.recv(wanted - len(data))
        if not chunk:
            break
        data += chunk
    return data


def kafka_answers(host: str, port: int, timeout_s: float = 2.0) -> bool:
    """Whether a plaintext Kafka listener at ``host:port`` answers an ApiVersions request within ``timeout_s``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            return ask_api_versions(sock, timeout_s) is Answer.KAFKA
    except OSError:
        return False
