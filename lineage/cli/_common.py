"""What the command groups share: settings, the taxonomy, times and stores from options, common options."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from lineage.errors import ConfigurationError
from lineage.settings import Settings

if TYPE_CHECKING:
    from lineage.contract.policy import Policy
    from lineage.contract.taxonomy import Taxonomy
    from lineage.store import Store, StoreLocation
    from lineage.world.sim import WorldSize

__all__ = [
    "count",
    "count_or_zero",
    "seconds",
    "add_answer_options",
    "add_kafka_options",
    "add_world_options",
    "counted_later_events_note",
    "later_events_warning",
    "parse_time",
    "policies_from",
    "settings_from",
    "add_store_options",
    "existing_location",
    "location_for",
    "store_for",
    "taxonomy_for",
    "world_size",
]


def count(text: str) -> int:
    """An argparse type: a whole number of at least 1 (rows, events, subjects, days)."""
    return _whole(text, minimum=1)


def count_or_zero(text: str) -> int:
    """An argparse type: a whole number of at least 0."""
    return _whole(text, minimum=0)


def _whole(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum or value > 2**31 - 1:
        raise argparse.ArgumentTypeError(f"{value} is out of range ({minimum} to {2**31 - 1})")
    return value


def seconds(text: str) -> float:
    """An argparse type: a duration in seconds, finite and not negative (``nan`` and ``inf`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0 or value > 10**9:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (0 to 1e9 seconds)")
    return value


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with the Kafka and store options given on the command line."""
    return Settings.from_env(
        os.environ,
        bootstrap_servers=getattr(args, "bootstrap_servers", None),
        topic=getattr(args, "topic", None),
        catalog_uri=getattr(args, "catalog_uri", None),
        warehouse=getattr(args, "warehouse", None),
    )


def taxonomy_for(settings: Settings) -> Taxonomy:
    """The default taxonomy, or the one in ``LINEAGE_TAXONOMY_DIR``."""
    from lineage.contract.taxonomy import Taxonomy, default_taxonomy

    return Taxonomy.load([settings.taxonomy_dir]) if settings.taxonomy_dir else default_taxonomy()


def parse_time(option: str, text: str | None) -> datetime | None:
    """An ISO 8601 time with an offset from option ``option`` (None when not given)."""
    from lineage.errors import InvalidEventError

    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidEventError(option, text, "is not an ISO 8601 time (e.g. 2026-05-01T08:00:00+08:00)") from None
    if value.tzinfo is None:
        raise InvalidEventError(option, text, "needs a UTC offset (e.g. +08:00 or Z)")
    # the contract's range (events are refused outside it); year 1 or 9999 with an offset would
    # overflow when turned into UTC deep inside a query instead of here
    try:
        year = value.astimezone(UTC).year
    except OverflowError:
        year = 0
    if not 1900 <= year <= 9999:
        raise InvalidEventError(option, text, "must be between the years 1900 and 9999 (UTC)")
    return value


def later_events_warning(store: Store, now: datetime, option: str) -> str | None:
    """When "now" came from the wall clock: a warning if the store holds events stamped after it.

    Such events are left out of an answer "as of now" (a service with a fast clock, a time zone
    mistake, a replay of future-dated test data); the analyst must hear of them, with the option
    that takes them in. The warning goes on stderr and into the report. Counts and a time only:
    no event's content.
    """
    later = _later_events(store, now, "SELECT count(*) AS n, max(occurred_at) AS latest FROM events "
                          "WHERE occurred_at > $now", {}, "in the store")  # fmt: skip
    if later is None:
        return None
    return _warn(f"{later}; they are left out: give {option} to include them")


def counted_later_events_note(store: Store, now: datetime, window_end: datetime) -> str | None:
    """For an answer over an explicit window: a warning if events stamped after now fall inside it.

    Such events are counted, like every event in the window (``breach`` reads up to ``--to``
    whatever the clock says); the analyst must hear that the answer rests on events dated in the
    future, and that no option of the answer leaves them out but a ``--to`` before them.
    """
    later = _later_events(store, now, "SELECT count(*) AS n, max(occurred_at) AS latest FROM events "
                          "WHERE occurred_at > $now AND occurred_at <= $until", {"until": window_end},
                          "inside the window")  # fmt: skip
    if later is None:
        return None
    return _warn(f"{later}; they are counted, as the window asks (--aware only sets when deadlines start)")


def _later_events(store: Store, now: datetime, query: str, params: dict[str, object], where: str) -> str | None:
    """The phrase "N event(s) ... stamped after now ..., the latest at ..." for what ``query`` counts; None if none."""
    row = store.sql(query, {"now": now, **params})[0]
    if not row["n"]:
        return None
    latest = row["latest"]
    latest_text = latest.isoformat() if isinstance(latest, datetime) else str(latest)
    return (
        f"{row['n']} event(s) {where} are stamped after now ({now.isoformat(timespec='seconds')}), "
        f"the latest at {latest_text}"
    )


def _warn(warning: str) -> str:
    """Say ``warning`` on stderr, and return it for the report."""
    import sys

    print(f"lineage: warning: {warning}", file=sys.stderr)
    return warning


def store_for(args: argparse.Namespace, settings: Settings) -> Store:
    """The store the options and settings name, pinned to one snapshot; one a consumer has written to.

    A mistyped path must not answer "no data held" or "no violations": a reading command on a
    folder that is not a store, or on a store with nothing committed, is an error naming the option.
    Every query of the command then reads the same snapshot, whose id the answer carries
    (``store_snapshot``) so it can be given again from it (``--snapshot``) however much is stored later.
    """
    from lineage.store import Store

    location, option = existing_location(args, settings)
    store = Store(location, snapshot=getattr(args, "snapshot", None))
    from lineage.errors import StoreNotFoundError
    from lineage.store.holdings import pinned_state

    try:
        # with no --snapshot: the events snapshot the newest holdings reflect (events stored since
        # wait for the holdings maintainer; the answer says how many, see answers.behind_note)
        snapshot_id = pinned_state(location, store.snapshot).events_snapshot
    except StoreNotFoundError as exc:  # a catalog without our table: the option points at the wrong place
        raise ConfigurationError(option, str(exc)) from None
    if snapshot_id is None:
        raise ConfigurationError(option, f"{location.describe()} holds no stored events yet: is it the right store?")
    store.snapshot = snapshot_id
    return store


def existing_location(args: argparse.Namespace, settings: Settings) -> tuple[StoreLocation, str]:
    """The store location the options name, and the option to blame when it holds no store.

    An embedded store's folder must hold a catalog already: opening a missing SQLite catalog creates it.
    """
    given = {k: getattr(args, k) for k in ("catalog_uri", "warehouse") if getattr(args, k, None)}
    settings = dataclasses.replace(settings, **given) if given else settings
    option = "--store" if args.store else "LINEAGE_STORE_DIR"
    location = location_for(args, settings, Path(args.store) if args.store else None)
    if location.root is not None and location.catalog_uri.startswith("sqlite:"):
        if not location.root.is_dir():
            raise ConfigurationError(option, f"{location.root} is not a folder (no lineage store there)")
        if not (location.root / "catalog.db").is_file():
            raise ConfigurationError(
                option, f"{location.root} holds no lineage store (no catalog.db): is it the right folder?"
            )
    if settings.catalog_uri is not None:  # a shared catalog: the setting that named it is at fault
        option = "--catalog-uri" if getattr(args, "catalog_uri", None) else "LINEAGE_CATALOG_URI"
    return location, option


def location_for(args: argparse.Namespace, settings: Settings, store_dir: Path | None) -> StoreLocation:
    """The store location the settings name; a path Iceberg cannot hold is refused naming its option."""
    from lineage.store import StoreLocation

    try:
        return StoreLocation.from_settings(settings, store_dir)
    except ConfigurationError as exc:
        if exc.setting == "warehouse":
            option = "--warehouse" if getattr(args, "warehouse", None) else "LINEAGE_WAREHOUSE"
        else:
            option = "--store" if getattr(args, "store", None) else "LINEAGE_STORE_DIR"
        raise ConfigurationError(option, str(exc).removeprefix(f"{exc.setting}: ")) from None


def add_store_options(sp: argparse.ArgumentParser, *, reading: bool = True) -> None:
    """The options naming the store; a reading command can also name a past snapshot."""
    sp.add_argument("--store", help="embedded store folder (env LINEAGE_STORE_DIR, default lineage-store)")
    sp.add_argument(
        "--catalog-uri",
        help="shared Iceberg catalog, e.g. postgresql+psycopg2://user@host:5432/db (env LINEAGE_CATALOG_URI; "
        "password only from LINEAGE_CATALOG_PASSWORD or LINEAGE_CATALOG_PASSWORD_FILE)",
    )
    sp.add_argument("--warehouse", help="where the table's files are, e.g. s3://bucket/prefix (env LINEAGE_WAREHOUSE)")
    if reading:
        sp.add_argument(
            "--snapshot", help="answer from this past snapshot (an id, or a name given by `lineage snapshots --pin`)"
        )


def world_size(args: argparse.Namespace) -> WorldSize:
    """The simulated world's size from the world options."""
    from lineage.world.sim import DEFAULT_END, WorldSize

    end = parse_time("--end", args.end) or DEFAULT_END
    return WorldSize(subjects=args.subjects, days=args.days, seed=args.seed, violations=args.violations, end=end)


def policies_from(arg: list[str] | None, taxonomy: Taxonomy) -> list[Policy]:
    """Policies from files and folders (every ``*.toml`` in a folder)."""
    from lineage.contract.policy import load_policy

    paths: list[Path] = []
    for item in arg or []:
        p = Path(item)
        found = sorted(p.glob("*.toml")) if p.is_dir() else [p]
        if not found:
            raise ConfigurationError("--policy", f"{item} is a folder with no *.toml policy file")
        paths.extend(found)
    return [load_policy(p, taxonomy) for p in paths]


def add_kafka_options(sp: argparse.ArgumentParser) -> None:
    """Add the kafka options to a sub-command."""
    sp.add_argument("--bootstrap-servers", help="host:port[,host:port] (env LINEAGE_BOOTSTRAP_SERVERS)")
    sp.add_argument("--topic", help="event topic (env LINEAGE_TOPIC, default lineage.events)")


def add_listen_options(sp: argparse.ArgumentParser, port: int) -> None:
    """Add ``--host`` and ``--port`` to a serving sub-command (127.0.0.1 by default: TLS goes in front)."""
    sp.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; put TLS in front)")
    sp.add_argument("--port", type=port_number, default=port, help=f"port (default {port})")


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{value} is out of range (1 to 65535)")
    return value


def add_answer_options(sp: argparse.ArgumentParser) -> None:
    """Add the answer options to a sub-command."""
    add_store_options(sp)
    sp.add_argument("--format", choices=["markdown", "json", "csv"], default="markdown")


def add_world_options(sp: argparse.ArgumentParser) -> None:
    """Add the world options to a sub-command."""
    sp.add_argument("--subjects", type=count, default=1000, help="data subjects per organisation (default 1000)")
    sp.add_argument("--days", type=count, default=365, help="days of history (default 365)")
    sp.add_argument("--seed", type=int, default=7, help="random seed: the same seed sends the same events")
    sp.add_argument("--violations", type=count_or_zero, default=2, help="breaches injected per clause (default 2)")
    sp.add_argument("--end", help="the history's last moment, ISO 8601 (default 2026-11-01T00:00Z)")
