"""The deployable holdings maintainer: ``python -m consumers.holdings [store options] [--interval S] [--no-fold]``.

Runs beside the ingest consumers and keeps the holdings table (what answers read) in step with the
events table: every ``--interval`` seconds it applies what the consumers stored since, in one
commit (``HoldingsMaintainer.refresh``), exactly once however often it is killed. Settings come from
the environment like the consumers' (``LINEAGE_STORE_DIR``, ``LINEAGE_CATALOG_URI``...). SIGTERM
or SIGINT stop it cleanly, ending a refresh in progress before its commit (exit 0). A store error
that may pass (a catalog or object store not answering, a race lost every time) is logged on one
line and tried again with a backoff; any other is one line on stderr and exit code 2.
"""

from __future__ import annotations

# only what installing the signal handlers needs: the rest loads after them (see main)
import sys
import threading
from time import monotonic
from typing import TYPE_CHECKING

from consumers import stopping

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from lineage.store import StoreLocation

__all__ = ["main", "maintain"]


_RETRY_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
_SWEEP_EVERY_S = 3600.0  # how often the whole heap is walked once (``settle_heap(everything=True)``)


def _parser() -> argparse.ArgumentParser:
    import argparse

    from lineage.cli.options import add_store_options, seconds

    p = argparse.ArgumentParser(prog="python -m consumers.holdings", description=__doc__.splitlines()[0])
    add_store_options(p, reading=False)
    p.add_argument("--interval", type=seconds, default=5.0, help="seconds between refreshes (default 5)")
    p.add_argument(
        "--no-fold", dest="fold", action="store_false",
        help="fold no buckets between refreshes (spare the CPU on a host the consumers share; refreshes still fold)",
    )  # fmt: skip
    return p


def maintain(location: StoreLocation, interval_s: float, stop: threading.Event, *, fold: bool = True) -> None:
    """Refresh the holdings every ``interval_s`` until ``stop``; retry transient store errors, raise others.

    The interval runs from one refresh's start to the next: one that took longer is followed at once
    (a pause after it would add the interval to every event's wait while the maintainer is behind).
    A refresh that leaves time in its interval spends it folding buckets (``HoldingsMaintainer.fold``),
    those expected to end within half of it: a maintainer at full speed never folds between refreshes.
    ``fold=False`` leaves folding to the refreshes. The garbage collector waits during a round, and
    after it the heap is settled (``lineage.process.settle_heap``): the engine kept between refreshes
    is left out of the collector's walks, which otherwise grow with it; once an hour the whole heap is
    walked.
    """
    import logging

    from lineage.errors import LineageError, StoreNotFoundError
    from lineage.ingest.holdings import HoldingsMaintainer, RefreshStopped
    from lineage.process import paused_gc, settle_heap

    log = logging.getLogger("consumers.holdings")
    maintainer = HoldingsMaintainer(location)
    maintainer.holdback = True  # it refreshes again within the interval: a held-back event waits one more
    failures = 0
    waiting = False
    swept = monotonic()
    while not stop.is_set():
        started = monotonic()
        try:
            if _no_catalog_yet(location):
                raise StoreNotFoundError(f"{location.describe()} has no catalog yet", path=location.describe())
            # no collection during a round: the settle after it walks what the round made, once
            with paused_gc():
                maintainer.refresh(stop=stop)
                failures, waiting = 0, False
                if fold and not stop.is_set():
                    # the time left of the interval folds the buckets deltas have gathered, those that fit
                    maintainer.fold(interval_s - (monotonic() - started))
                everything = monotonic() - swept >= _SWEEP_EVERY_S
                settle_heap(everything=everything)  # the engine kept between refreshes: out of later walks
            swept = monotonic() if everything else swept
        except RefreshStopped:
            break
        except StoreNotFoundError:
            # started before any consumer stored anything: wait for the events table, as a consumer
            # waits for its topic (said once: a typo in the store's name would wait forever)
            if not waiting:
                log.warning("no events stored at %s yet: waiting for the consumers", location.describe())
                waiting = True
        except LineageError as exc:
            if not exc.retryable:
                raise
            wait = _RETRY_BACKOFF_S[min(failures, len(_RETRY_BACKOFF_S) - 1)]
            failures += 1
            log.warning("store error, retrying in %s s: %s", wait, _one_line(str(exc)))
            stopping.pause(stop, wait)
            continue
        stopping.pause(stop, max(0.0, interval_s - (monotonic() - started)))


def _no_catalog_yet(location: StoreLocation) -> bool:
    """An embedded store whose catalog file is not there yet (opening it would create it: the consumers do)."""
    root = location.root
    return root is not None and location.catalog_uri.startswith("sqlite:") and not (root / "catalog.db").is_file()


def main(argv: Sequence[str] | None = None) -> int:
    """Maintain the holdings until stopped; 0 on a clean stop, 2 on a store error that will not pass."""
    # first, before lineage and the store's libraries load (a second or two): a stop while starting is clean
    stop = stopping.stop_on_signals()
    import logging
    from pathlib import Path

    from lineage.process import prefer_jemalloc

    prefer_jemalloc()  # before the store loads pyarrow

    from lineage.logs import configure_logging
    configure_logging(logging.INFO)
    args = _parser().parse_args(argv)
    from lineage.cli.options import location_for, settings_from
    from lineage.errors import LineageError

    try:
        settings = settings_from(args)
        location = location_for(args, settings, Path(args.store) if args.store else None)
        maintain(location, args.interval, stop, fold=args.fold)
    except LineageError as exc:
        print(f"lineage-holdings: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: one line naming its type only (a message may hold personal data)
        print(f"lineage-holdings: internal error ({type(exc).__name__}); please report it", file=sys.stderr)
        return 70
    return 0


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    code = main()
    stopping.hold()  # the work is done: a stop now must not meet the default action Python restores on exit
    sys.exit(code)
