"""Reaching the brokers: the settings every kafka-python client shares, and a bounded wait for a broker.

The one home of connection options, so producers, consumers and the admin client connect alike.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from lineage.errors import BrokerUnavailableError
from lineage.settings import Settings

__all__ = ["client_options", "wait_for_broker"]


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
