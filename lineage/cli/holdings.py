"""Keeping the holdings table: ``lineage holdings [--rebuild]`` (one refresh), shared with the processes."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING

from lineage.cli._common import existing_location
from lineage.cli.options import add_store_options, settings_from
from lineage.errors import ConfigurationError, StoreNotFoundError

if TYPE_CHECKING:
    from lineage.ingest.holdings import Refreshed
    from lineage.store import StoreLocation

__all__ = ["cmd_holdings", "refresh_once", "register", "stop_on_signals"]

log = logging.getLogger("lineage.holdings")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this group's sub-commands."""
    holdings = sub.add_parser(
        "holdings", help="bring the holdings table (what answers read) up to date with the stored events, once"
    )
    add_store_options(holdings, reading=False)
    holdings.add_argument("--rebuild", action="store_true", help="recompute every holding from the events table")
    holdings.set_defaults(func=cmd_holdings)


def stop_on_signals() -> threading.Event:
    """An event SIGTERM and SIGINT set: a stop asked for while starting is a clean stop too.

    A launcher may hold the two signals blocked while the process starts (``consumers.ingest`` does
    from its first line, and its supervisor for each child): one sent meanwhile waited, pending, for
    these handlers, and is delivered to them when they are unblocked here.
    """
    stop = threading.Event()
    signals = {signal.SIGTERM, signal.SIGINT}
    for sig in signals:
        signal.signal(sig, lambda *_: stop.set())
    signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
    return stop


def cmd_holdings(args: argparse.Namespace) -> int:
    """One refresh (or a rebuild); its line on stdout. SIGTERM/SIGINT stop it before its commit."""
    stop = stop_on_signals()  # first: the store's libraries take a second or two to load
    # progress on stderr (a rebuild can take minutes); the result is the one line on stdout
    from lineage.logs import configure_logging
    configure_logging(logging.INFO)
    settings = settings_from(args)
    location, option = existing_location(args, settings)
    done = refresh_once(location, stop, rebuild=args.rebuild, option=option)
    if done is not None and done.source is None:
        raise ConfigurationError(option, f"{location.describe()} holds no stored events yet: is it the right store?")
    if done is not None:
        print(done.line())
    return 0


def refresh_once(
    location: StoreLocation, stop: threading.Event, *, rebuild: bool = False, option: str = "--store"
) -> Refreshed | None:
    """One refresh of the holdings at ``location``; None when ``stop`` ended it (nothing committed)."""
    from lineage.ingest.holdings import HoldingsMaintainer, RefreshStopped

    if stop.is_set():
        return None
    try:
        return HoldingsMaintainer(location).refresh(rebuild=rebuild, stop=stop)
    except RefreshStopped as exc:
        print(f"lineage holdings: {exc}", file=sys.stderr)
        return None
    except StoreNotFoundError as exc:  # no events table: the option points at the wrong place
        raise ConfigurationError(option, str(exc)) from None
