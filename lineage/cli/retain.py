"""``lineage retain --older-than DAYS``: store retention, events older than a cut-off out of every copy the store keeps.

The holdings stay: they are brought up to date first and keep what the answers need of the
retired events (who holds what, since when, from where, for how long); see docs/operations.md.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from lineage.cli._common import existing_location, parse_time
from lineage.cli.options import add_store_options, seconds, settings_from
from lineage.errors import ConfigurationError, StoreNotFoundError

__all__ = ["cmd_retain", "register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this group's sub-commands."""
    retain = sub.add_parser(
        "retain", help="remove events older than a retention period from the store (the holdings stay right)"
    )
    when = retain.add_mutually_exclusive_group()
    when.add_argument(
        "--older-than",  # checked in cmd_retain: one line naming it, not argparse's usage text
        metavar="DAYS",
        help="remove events that occurred more than DAYS days ago (default: LINEAGE_KEEP_EVENTS_DAYS)",
    )
    when.add_argument("--before", metavar="TIME", help="remove events that occurred before TIME (with an offset)")
    retain.add_argument(
        "--grace",
        type=seconds,
        default=60.0,
        help="keep unreferenced files younger than this (a writer may be about to commit them; default 60 s)",
    )
    add_store_options(retain, reading=False)
    retain.set_defaults(func=cmd_retain)


def cmd_retain(args: argparse.Namespace) -> int:
    """Retire the events before the cut-off; what went in one line, kept in the store's retention record too."""
    from lineage.ingest.holdings import HoldingsMaintainer
    from lineage.store.retention import cutoff_for, record_retention, retire_events

    settings = settings_from(args)
    now = datetime.now(UTC)
    days = _days(args.older_than) if args.older_than is not None else None
    cutoff = cutoff_for(
        days=settings.keep_events_days if days is None and args.before is None else days,
        before=parse_time("--before", args.before),
        now=now,
    )
    location, option = existing_location(args, settings)
    try:  # a store with nothing stored is the wrong place: refused before anything is made there
        stored = location.load().current_snapshot() is not None
    except StoreNotFoundError as exc:
        raise ConfigurationError(option, str(exc)) from None
    if not stored:
        raise ConfigurationError(option, f"{location.describe()} holds no stored events yet: is it the right store?")
    retired = retire_events(location, cutoff, refresh_holdings=HoldingsMaintainer(location).refresh, grace_s=args.grace)
    record_retention(location, retired, ran_at=now)
    print(
        f"retired events before {cutoff.isoformat(timespec='seconds')}: events rows {retired.events_rows}, "
        f"data files rewritten {retired.files_rewritten}, snapshots expired {retired.snapshots_expired}, "
        f"files removed {retired.files_removed}"
        + (f", pins removed {','.join(retired.pins_removed)}" if retired.pins_removed else "")
        + "; the holdings keep what those events made"
    )
    return 0


def _days(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigurationError("--older-than", f"expected a whole number of days, got {text[:20]!r}") from None
