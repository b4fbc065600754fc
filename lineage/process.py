"""What a lineage process sets before it loads the store's libraries: Arrow's allocator.

Why: pyarrow's default allocator (mimalloc) was slow to first touch memory it had just taken from
the system on the machines we measure on: copying one holdings bucket (1.07M rows) into new
columns took 1.4 s under mimalloc against 0.2 s under the C library's malloc, and the same copy
again 0.08 s under both. A holdings refresh of 2.1M rows went from 6.1 s to 3.8 s with the change
(``./run bench holdings_refresh --subjects 8000``; figures in docs/operations.md).

pyarrow reads ``ARROW_DEFAULT_MEMORY_POOL`` once, when it is imported, so this runs first in each
entry point (``lineage``, ``lineage-ingest``, ``lineage-holdings``); child processes inherit it. An
operator's own choice of that variable is kept.
"""

from __future__ import annotations

import os

__all__ = ["ARROW_POOL", "prefer_system_allocator"]

ARROW_POOL = "ARROW_DEFAULT_MEMORY_POOL"


def prefer_system_allocator() -> None:
    """Have Arrow use the C library's allocator in this process and its children, unless one was chosen."""
    os.environ.setdefault(ARROW_POOL, "system")
