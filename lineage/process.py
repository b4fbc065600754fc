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
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ARROW_POOL", "paused_gc", "prefer_jemalloc"]

ARROW_POOL = "ARROW_DEFAULT_MEMORY_POOL"


def prefer_jemalloc() -> None:
    """Have Arrow use jemalloc in this process and its children on Linux, unless an allocator was chosen."""
    # empty counts as unset, as pyarrow reads it (a deployment template's blank value gave mimalloc: review)
    if sys.platform == "linux" and not os.environ.get(ARROW_POOL):  # other systems' wheels may lack it
        os.environ[ARROW_POOL] = "jemalloc"


_gc_lock = threading.Lock()
_gc_pauses = 0  # blocks inside ``paused_gc`` now, in any thread
_gc_was_enabled = False  # whether the collector ran before the first of them


@contextmanager
def paused_gc() -> Iterator[None]:
    """The garbage collector paused while many objects that stay alive are made (none is garbage).

    Each collection of the oldest generation walks every object alive: building a million rows, or
    the holdings engine's runs and its undo journal, it finds nothing and costs a third of the time.
    Blocks in several threads share one count: the collector runs again when the last one ends (each
    reading ``gc.isenabled()`` itself, one could find another's pause and leave it off for good).
    """
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if not _gc_pauses:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if not _gc_pauses and _gc_was_enabled:
                gc.enable()
