"""What a lineage process sets before it loads the store's libraries (Arrow's allocator), and the collector paused.

Why: pyarrow's default allocator (mimalloc) was slow to first touch memory it had just taken from
the system on the machines we measure on: copying one holdings bucket (1.07M rows) into new
columns took 1.4 s under mimalloc against 0.1-0.2 s under jemalloc or the C library's malloc, and
the same copy again 0.08 s under all three. A holdings refresh of 806k rows (the whole refresh,
same code) took 4.49 s under mimalloc, 2.17 s under jemalloc, 1.98 s under malloc; restoring the
maintainer's state at 1M subjects peaked at 10.6 GB, 10.1 GB and 14.1 GB (malloc keeps what it
freed between Python's objects). So jemalloc, which every Linux wheel of pyarrow carries (figures
in docs/operations.md).

pyarrow reads ``ARROW_DEFAULT_MEMORY_POOL`` once, when it is imported, so this runs first in each
entry point (``lineage``, ``lineage-ingest``, ``lineage-holdings``); child processes inherit it. An
operator's own choice of that variable is kept; elsewhere than Linux pyarrow's default stays.
"""

from __future__ import annotations

import gc
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Generic, TypeVar

__all__ = [
    "ARROW_POOL", "ProcessWide", "hear_stop_signals", "paused_gc", "prefer_jemalloc", "settle_heap", "usable_cores",
]  # fmt: skip

T = TypeVar("T")

ARROW_POOL = "ARROW_DEFAULT_MEMORY_POOL"


def prefer_jemalloc() -> None:
    """Have Arrow use jemalloc in this process and its children on Linux, unless an allocator was chosen."""
    # empty counts as unset, as pyarrow reads it (a deployment template's blank value gave mimalloc: review)
    if sys.platform == "linux" and not os.environ.get(ARROW_POOL):  # other systems' wheels may lack it
        os.environ[ARROW_POOL] = "jemalloc"


class ProcessWide(Generic[T]):
    """A process-wide setting held by blocks in any thread: the first to enter sets it, the last to leave puts it back.

    Each block saving and putting back its own, a thread leaving first would restore the old value
    while another thread's block still relies on the new one.
    """

    def __init__(self, take: Callable[[], T], give_back: Callable[[T], object]) -> None:
        """``take()`` sets it and returns what to give back; ``give_back(that)`` restores it."""
        self._take, self._give_back = take, give_back
        self._lock = threading.Lock()
        self._inside = 0  # blocks inside now, in any thread
        self._saved: T | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        """The setting held for the block."""
        with self._lock:
            if not self._inside:
                self._saved = self._take()
            self._inside += 1
        try:
            yield
        finally:
            with self._lock:
                self._inside -= 1
                if not self._inside:
                    self._give_back(self._saved)  # type: ignore[arg-type]  # set by the first to enter


def hear_stop_signals(stop: Callable[[], None] | None = None) -> None:
    """Before a server serves: SIGTERM and SIGINT reach it, and SIGTERM calls ``stop`` (the server's own stop).

    A child keeps its parent's signal mask across ``exec``: a supervisor holding the stop signals
    while it starts children (``consumers.stopping``) left a server that never heard SIGTERM, since
    uvicorn installs its handlers but never unblocks them (the gateway's tests waited 60 s for each
    stop, then killed it). And once uvicorn has shut down it puts back the handler it found and
    raises the signal again: under the default one the process died there (-15), before what the
    caller closes after serving (the gateway's relay, flushing what is in flight) ran. Found as ours,
    it only asks the server to stop again, and serving returns. A SIGTERM held until now arrives here,
    before uvicorn's handlers: ``stop`` makes the server stop as soon as it has started. Without
    ``stop`` (a server whose own handlers are in place already) the signals are only unblocked.
    Only the main thread may handle signals: elsewhere this does nothing.
    """
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        return
    if stop is not None:
        signal.signal(signal.SIGTERM, lambda signum, frame: stop())
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})


def _gc_off() -> bool:
    was = gc.isenabled()
    gc.disable()
    return was


def _gc_back(was: bool) -> None:
    if was:
        gc.enable()


_GC_PAUSED = ProcessWide(_gc_off, _gc_back)


def paused_gc() -> AbstractContextManager[None]:
    """The garbage collector paused while many objects that stay alive are made (none is garbage).

    Each collection of the oldest generation walks every object alive: building a million rows, or
    the holdings engine's runs and its undo journal, it finds nothing and costs a third of the time.
    Overlapping pauses in several threads end when the last one does.
    """
    return _GC_PAUSED.held()


def settle_heap(*, everything: bool = False) -> None:
    """Collect the garbage made since the last settle, then move what is alive out of the collector's walks.

    For a process that keeps a large state and works in rounds (the holdings maintainer): each
    collection of the oldest generation walks every object alive, and the engine's millions of them
    are never garbage (they die by reference count: none is in a cycle). Measured at 600,000 events,
    those walks were 1.1 s of a 3.3 s refresh, growing with the state. Frozen (``gc.freeze``), they
    are skipped; the collection here walks only what this round made (0.1-0.4 s at 0.6-1.2M events)
    and frees the few thousand objects in cycles a round leaves (mostly SQLAlchemy's: an engine and
    a connection for each catalog open; some pyiceberg's). Call it from one thread only: another's
    objects half made inside its own ``paused_gc`` would be frozen too. An object frozen alive that
    later dies in a cycle is freed only by a settle with ``everything``, which unfreezes first and
    walks the whole heap once.
    """
    if everything:
        gc.unfreeze()
    gc.collect()
    gc.freeze()


def usable_cores(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The cores this process may run on: its CPU affinity, capped by a container's CPU quota (cgroup v2 or v1).

    ``os.cpu_count`` counts the machine's cores, and the affinity ignores a quota: a container
    limited to 2 CPUs on a 64-core host would otherwise size its thread pools for 64.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    v1 = cgroup / "cpu"
    quota = _quota(cgroup / "cpu.max") or _quota(v1 / "cpu.cfs_quota_us", v1 / "cpu.cfs_period_us")
    return max(1, min(cores, math.ceil(quota)) if quota else cores)


def _quota(limit: Path, period: Path | None = None) -> float | None:
    """CPUs a cgroup file allows (v2 ``cpu.max``: "quota period"; v1: quota and period apart); None: no limit."""
    try:
        if period is None:
            text = limit.read_text().split()
            allowed, per = text[0], text[1]
        else:
            allowed, per = limit.read_text().strip(), period.read_text().strip()
        if allowed in ("max", "-1") or int(per) <= 0:
            return None
        return int(allowed) / int(per)
    except (OSError, ValueError, IndexError):
        return None
