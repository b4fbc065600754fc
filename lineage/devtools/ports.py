"""Free loopback ports for the development servers: the local broker, and the tests' own servers.

A port the kernel hands out for ``bind(("127.0.0.1", 0))`` comes from its ephemeral range, the range
every outgoing connection takes its local port from too. Between choosing such a port and the server
binding it (or while a server is down for a restart on the same port) a client's connection, or another
test worker's choice, can take it, and the server then fails to start. ``LINEAGE_PORT_RANGE``
(``LOW-HIGH``, e.g. ``12000-16999``) makes the choices come from a range of one's own, below the
ephemeral one: the test runner gives each of its workers one (``tests/conftest.py``). Unset, the
kernel chooses.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Collection

from lineage.errors import ConfigurationError

__all__ = ["PORT_RANGE_ENV", "free_port", "port_is_free", "port_range"]

PORT_RANGE_ENV = "LINEAGE_PORT_RANGE"
LOOPBACK = "127.0.0.1"
_TRIES = 1000

# where in the range this process looks next: a random start (another process may use the same
# range), then on, so that ports chosen one after another before any is bound are never the same
_next: dict[tuple[int, int], int] = {}
_choosing = threading.Lock()


def port_range() -> tuple[int, int] | None:
    """``LINEAGE_PORT_RANGE`` as (lowest, highest), both included; None when unset."""
    text = os.environ.get(PORT_RANGE_ENV, "").strip()
    if not text:
        return None
    low, sep, high = text.partition("-")
    try:
        bounds = (int(low), int(high)) if sep else None
    except ValueError:
        bounds = None
    if bounds is None or not 1024 <= bounds[0] <= bounds[1] <= 65535:
        raise ConfigurationError(PORT_RANGE_ENV, f"is {text!r}; expected LOW-HIGH, ports 1024 to 65535, LOW <= HIGH")
    return bounds


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` at the loopback address now (a port in TIME_WAIT is free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def free_port(avoid: Collection[int] = ()) -> int:
    """A loopback port no one listens on, not one of ``avoid`` (chosen but not bound yet), from the range if set."""
    bounds = port_range()
    if bounds is None:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((LOOPBACK, 0))
                port = int(s.getsockname()[1])
            if port not in avoid:
                return port
    low, high = bounds
    size = high - low + 1
    with _choosing:  # not the global random, which Hypothesis seeds the same in every test
        at = _next.get(bounds, secrets.randbelow(size))
        for i in range(min(size, _TRIES)):
            port = low + (at + i) % size
            if port not in avoid and port_is_free(port):
                _next[bounds] = (at + i + 1) % size
                return port
    raise ConfigurationError(PORT_RANGE_ENV, f"no free port among the {min(size, _TRIES)} tried in {low}-{high}")
