"""Reaching the brokers: the settings every kafka-python client shares, and a bounded wait for a broker.

The one home of connection options, so producers, consumers and the admin client connect alike.
"""

from __future__ import annotations

import functools
import socket
import time
from typing import Any

from kafka.net.inet import KafkaNetSocket

from lineage.errors import BrokerUnavailableError
from lineage.settings import Settings

__all__ = ["client_options", "wait_for_broker"]


def _close_socket_of_failed_connect() -> None:
    """Make kafka-python close the socket of a connection attempt that failed.

    kafka-python 3.0.12's ``KafkaNetSocket.sock_connect`` raises when the connection is refused or
    times out without closing the socket it was given: a client whose broker is down leaks one
    socket per reconnect attempt (a ResourceWarning each, an error under our tests). An emitter
    riding out a broker outage makes many attempts, so the socket is closed here on any failure.
    """
    original = KafkaNetSocket.sock_connect
    if getattr(original, "_lineage_closes", False):
        return

    @functools.wraps(original)
    async def sock_connect(self: Any, net: Any, sock: socket.socket, sockaddr: Any, timeout_at: Any = None) -> Any:
        try:
            return await original(self, net, sock, sockaddr, timeout_at=timeout_at)
        except BaseException:
            sock.close()
            raise

    sock_connect._lineage_closes = True  # type: ignore[attr-defined]
    KafkaNetSocket.sock_connect = sock_connect


_close_socket_of_failed_connect()


def client_options(settings: Settings, *, client_suffix: str = "") -> dict[str, Any]:
    """Options every kafka-python client takes from our settings: where the brokers are, who we are."""
    return {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "client_id": settings.client_id + client_suffix,
        "bootstrap_timeout_ms": int(settings.connect_timeout_s * 1000),
    }


def wait_for_broker(settings: Settings) -> None:
    """Wait until some bootstrap server accepts a TCP connection, or raise ``BrokerUnavailableError``.

    Checked before kafka-python is involved: its bootstrap loop leaks a socket per failed attempt
    (3.0.12), and a refused port should fail with our message, not after its retries.
    """
    deadline = time.monotonic() + settings.connect_timeout_s
    last = "no bootstrap server given"
    backoff = 0.05
    while True:
        for server in settings.bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            remaining = deadline - time.monotonic()
            try:
                socket.create_connection(
                    (host.strip("[]") or "localhost", int(port)), timeout=max(remaining, 0.01)
                ).close()
                return
            except (OSError, ValueError) as exc:
                last = f"{server.strip()}: {exc}"
        if time.monotonic() + backoff >= deadline:
            raise BrokerUnavailableError(settings.bootstrap_servers, settings.connect_timeout_s, last)
        time.sleep(backoff)
        backoff = min(backoff * 2, 1.0)
