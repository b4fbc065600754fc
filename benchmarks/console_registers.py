"""The registers page's time and size: `lineage serve` over a store, one analyst, the page opened a few times.

Run against the demo's store (`./run demo` keeps it in demo-output/store), by the project's own
Python or another checkout's (``--python``) to compare two versions on the same store:

    ./run bench console_registers [--store demo-output/store] [--runs 5] [--python PATH]

Printed: the page's bytes, and its median and slowest time over the runs (the first, which warms
the server, apart), then the same for the second page of the transfers table. With ``--moving``
each view after the first meets a new read of the store (an event stored and the holdings
refreshed before it, outside the timing), as on a live store. With ``--restart`` the registers kept
in the console database are deleted before the first server starts (its first view computes them:
the baseline), and after the runs a second server (another worker, or the console restarted) is
started and its first view timed. With ``--ahead`` the first view waits until the server has
computed the registers ahead of any view (as ``lineage serve`` does at start: kept in the console
database), and the wait is printed: with ``--restart``, a view that comes right after a start (the
baseline, the same command without ``--ahead``) against one that comes later.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lineage.devtools.ports import free_port

PASSWORD = "registers-bench-password-1"


def _move(store: str) -> None:
    """Store one new event and refresh the holdings: the store's read moves on, as a live one's does."""
    from datetime import UTC, datetime

    from lineage import Codec, default_taxonomy
    from lineage.contract.records import make_record
    from lineage.ingest.holdings import HoldingsMaintainer
    from lineage.ingest.pipeline import Ingestor
    from lineage.store import StoreLocation

    location = StoreLocation.embedded(Path(store))
    record = make_record("COLLECTED", system="bench-mover", system_region="CN", subject_id="bench-mover-1",
                         categories=["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT",
                         occurred_at=datetime.now(UTC))  # fmt: skip
    ingestor = Ingestor(location, "events", taxonomy=default_taxonomy())
    assert ingestor.add(99, time.time_ns() // 1000, Codec().encode_record(record)) is None  # partition 99: ours
    ingestor.flush()
    HoldingsMaintainer(location).refresh()


def _time(
    opener: urllib.request.OpenerDirector, url: str, runs: int, moving: str | None = None
) -> tuple[int, float, float, float]:
    took, size = [], 0
    for run in range(runs + 1):
        if moving and run:
            _move(moving)
        t0 = time.perf_counter()
        with opener.open(url, timeout=600) as r:
            size = len(r.read())
        took.append(time.perf_counter() - t0)
    return size, took[0], statistics.median(took[1:]), max(took[1:])


def main() -> int:
    """Serve the store, sign in, time the page."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default="demo-output/store")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--python", default=sys.executable, help="the Python whose lineage serves (another checkout's)")
    ap.add_argument("--moving", action="store_true", help="before each view after the first, store an event and "
                    "refresh the holdings (a live store: every view meets a new read)")  # fmt: skip
    ap.add_argument("--restart", action="store_true", help="compute the registers anew first, then time a second "
                    "server's first view")  # fmt: skip
    ap.add_argument("--ahead", action="store_true", help="before the first view, wait for the registers the "
                    "server computes ahead of any view (kept in the console database)")  # fmt: skip
    args = ap.parse_args()
    name = f"bench{int(time.time())}"
    lineage = [args.python, "-m", "lineage.cli"]
    made = subprocess.run([*lineage, "users", "add", name, "--role", "analyst", "--password-stdin", "--store",
                           args.store], input=PASSWORD + "\n", text=True, capture_output=True, check=False)  # fmt: skip
    if made.returncode != 0:
        print(made.stderr, file=sys.stderr)
        return 1
    if args.restart or args.ahead:  # --ahead waits for those this server computes, not older ones
        _drop_kept(args.store)
    with _serving(lineage, args.store) as base:
        opener = _signed_in(base, name)
        if args.ahead:
            t0 = time.perf_counter()
            _wait_kept(args.store)
            print(f"registers computed ahead by the server, kept {time.perf_counter() - t0:.2f} s after sign-in")
        for label, path in (("registers", "/registers"), ("transfers page 2", "/registers?transfers.page=2")):
            size, first, median, worst = _time(opener, base + path, args.runs, args.store if args.moving else None)
            print(f"{label}: {size:,} bytes; first {first:.2f} s, then median {median:.2f} s, max {worst:.2f} s "
                  f"over {args.runs} runs")  # fmt: skip
    if args.restart:
        with _serving(lineage, args.store) as base:
            opener = _signed_in(base, name)
            t0 = time.perf_counter()
            with opener.open(base + "/registers", timeout=600) as r:
                updating = b"updating" in r.read()
            print(f"a second server's first view (another worker, or a restart): {time.perf_counter() - t0:.2f} s"
                  f"{' (the kept ones, updating)' if updating else ''}")  # fmt: skip
    return 0


def _drop_kept(store: str) -> None:
    """Delete the registers kept in the store's console database: the next first view computes them."""
    from lineage.console import kept
    from lineage.console.db import ConsoleDB

    db = ConsoleDB(f"sqlite:///{(Path(store) / 'console.db').resolve()}")
    try:
        kept.drop(db)
    finally:
        db.close()


def _wait_kept(store: str) -> None:
    """Wait until registers are kept in the store's console database (at most 600 s)."""
    from lineage.console.db import ConsoleDB

    db = ConsoleDB(f"sqlite:///{(Path(store) / 'console.db').resolve()}")
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with db.tx() as tx:  # a claim's row has no body
                if tx.one("SELECT 1 AS kept FROM console_registers WHERE body <> ''"):
                    return
            time.sleep(0.2)
        raise SystemExit("no registers were kept within 600 s")
    finally:
        db.close()


@contextmanager
def _serving(lineage: list[str], store: str) -> Iterator[str]:
    """``lineage serve`` over the store, answering: its base address; stopped after."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    policies = str(Path(__file__).resolve().parent.parent / "policies")
    server = subprocess.Popen([*lineage, "serve", "--store", store, "--port", str(port), "--no-audit-kafka",
                               "--policy", policies], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(base + "/login", timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("lineage serve did not start") from None
                time.sleep(0.3)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def _signed_in(base: str, name: str) -> urllib.request.OpenerDirector:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with opener.open(base + "/login") as r:
        token = re.search(r'name="csrf" value="([^"]+)"', r.read().decode())
    assert token is not None
    form = urllib.parse.urlencode({"name": name, "password": PASSWORD, "csrf": token.group(1)}).encode()
    opener.open(base + "/login", form).close()
    return opener


if __name__ == "__main__":
    raise SystemExit(main())
