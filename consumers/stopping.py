"""A clean stop on SIGTERM or SIGINT at any moment of a process's life, from its first line to its exit.

Python acts on SIGTERM the default way (the process dies, exit -15) until a handler is installed,
which in a consumer comes only after a second or more of imports (many seconds on a loaded host),
and again while the interpreter shuts down, once it has put the default actions back. So a process
*holds* the stop signals (blocked: a signal sent then waits, pending, neither acted on nor lost) from
its first line until its handlers are in place, and again from the end of its work to its exit.
``spawn`` starts a child with them held, which closes the one gap left, the interpreter's own start.

Only the standard library here: this loads before anything else.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["STOP_SIGNALS", "hold", "pause", "spawn", "stop_on_signals"]

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def hold() -> None:
    """Keep SIGTERM and SIGINT pending from now on, until ``stop_on_signals`` (or the process's exit)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def stop_on_signals() -> threading.Event:
    """An event SIGTERM and SIGINT set from now on; one held until now is delivered to it at once.

    The same steps as ``lineage.cli.holdings.stop_on_signals``, which a consumer's command uses: that
    module loads the store's libraries, too slow to wait for here.
    """
    stop = threading.Event()
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: stop.set())
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    return stop


def pause(stop: threading.Event, seconds: float) -> None:
    """Wait ``seconds`` or until ``stop`` is set, without ever holding ``stop``'s lock.

    ``Event.wait`` holds the event's lock for a moment at its start and end; a signal handler that
    sets the event runs on the same (main) thread, so one landing in that moment would wait for
    that lock forever. Sleeping in short steps reads the flag without the lock.
    """
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


def spawn(argv: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(argv, **popen)`` with the stop signals held in the child until it handles them.

    A child inherits the signal mask of the thread that starts it, and keeps it across ``exec``: a
    SIGTERM sent while its interpreter starts waits for the child's ``stop_on_signals``. Only for
    children that call it (ours); any other program would never see those signals.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        return subprocess.Popen(list(argv), **popen)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
