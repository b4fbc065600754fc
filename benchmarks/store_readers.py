"""Readers at once in one process: one lock (as before), cursors of one connection, or a connection each.

The store is answers_latency's synthetic history (--subjects subjects, 20 events each, holdings
table built). --threads threads each ask the person page's two answers (access report and erasure
plan, 20% by device id) --asks times, in three ways, on the same store in the same run:

- one lock: every answer waits for one lock around the store, as `Store.session` did before it lent
  cursors (the lock is taken here around each answer, on the one shared ``Store``);
- cursors: the one shared ``Store``; each session borrows a cursor of its snapshot's connection;
- connections: a ``Store`` per thread, so a connection (and a database) per thread.

Printed per way and round (--rounds, every other one in reverse order, so no way always runs on the
warmest caches): answers/s, p50 and p99 of one answer's time, and the process's peak memory so far.

    ./run bench store_readers [--subjects 20000] [--threads 8] [--asks 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _stores import embedded, load, p99  # noqa: E402
from answers_latency import write  # noqa: E402

from lineage import default_taxonomy  # noqa: E402
from lineage.answers import access_request, erasure_plan  # noqa: E402
from lineage.ingest.holdings import HoldingsMaintainer  # noqa: E402
from lineage.store import Store  # noqa: E402

AS_OF = datetime.fromisoformat("2026-06-01T00:00:00+00:00")
TAXONOMY = default_taxonomy()


def _ident(rng: random.Random, subjects: int) -> str:
    i = rng.randrange(subjects)
    return f"d{i:07d}" if rng.random() < 0.2 else f"u{i:07d}"


def _run(threads: int, asks: int, subjects: int, store_of: Callable[[int], Store],
         guard: Callable[[], AbstractContextManager[object]]) -> tuple[float, list[float]]:  # fmt: skip
    """(wall seconds, each answer's seconds) with ``threads`` threads asking ``asks`` times each."""
    times: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def ask(n: int) -> None:
        rng, store = random.Random(n), store_of(n)
        access_request(store, _ident(rng, subjects), TAXONOMY, AS_OF)  # warm: the connection opened
        start.wait()
        for _ in range(asks):
            ident = _ident(rng, subjects)
            t = time.perf_counter()
            with guard():
                access_request(store, ident, TAXONOMY, AS_OF)
                erasure_plan(store, ident, TAXONOMY, AS_OF)
            with lock:
                times.append(time.perf_counter() - t)

    workers = [threading.Thread(target=ask, args=(n,)) for n in range(threads)]
    t = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - t, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--asks", type=int, default=10, help="answers per thread")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the three ways, every other one reversed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-readers-") as tmp:
        folder = Path(tmp) / "store"
        events = write([embedded(folder)], args.subjects)
        HoldingsMaintainer(embedded(folder).location).refresh()
        print(f"{events:,} events ({args.subjects:,} subjects); {args.threads} threads x {args.asks} answers each")
        shared = Store(folder)
        one_lock = threading.Lock()
        own = [Store(folder) for _ in range(args.threads)]
        ways: list[tuple[str, Callable[[int], Store], Callable[[], AbstractContextManager[object]]]] = [
            ("one lock", lambda n: shared, lambda: one_lock),
            ("cursors", lambda n: shared, nullcontext),
            ("connections", lambda n: own[n], nullcontext),
        ]
        rounds = [ways if r % 2 == 0 else ways[::-1] for r in range(args.rounds)]  # no way always runs warmest
        for name, store_of, guard in (way for round_ in rounds for way in round_):
            wall, times = _run(args.threads, args.asks, args.subjects, store_of, guard)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{name:12} {len(times) / wall:6.1f} answers/s, p50 {statistics.median(times) * 1000:5.0f} ms, "
                  f"p99 {p99(times) * 1000:5.0f} ms; peak RSS so far {peak:.0f} MB; {load()}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
