"""Filling and keeping the store: ``lineage ingest``, ``compact``, ``snapshots`` and ``claim``."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lineage.cli._common import store_for, taxonomy_for
from lineage.cli.options import add_kafka_options, add_store_options, count, location_for, seconds, settings_from
from lineage.errors import ConfigurationError
from lineage.private import private_dir

if TYPE_CHECKING:
    from lineage.settings import Settings
    from lineage.store import StoreLocation

__all__ = [
    "IngestOptions", "add_ingest_options", "cmd_claim", "cmd_ingest", "refresh_holdings", "register", "run_ingest",
]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this group's sub-commands."""
    ingest = sub.add_parser("ingest", help="consume events into the lineage store (Ctrl-C or SIGTERM to stop)")
    add_ingest_options(ingest)
    ingest.set_defaults(func=cmd_ingest)

    compact = sub.add_parser(
        "compact", help="rewrite small store files sorted by subject; expire old snapshots; remove orphan files"
    )
    add_store_options(compact, reading=False)
    compact.add_argument("--target-mb", type=count, default=64, help="rewrite files smaller than half this size")
    compact.add_argument(
        "--expire-after", type=seconds, default=86400.0, help="expire snapshots older than this (s, default a day)"
    )
    compact.add_argument(
        "--grace",
        type=seconds,
        default=3600.0,
        help="remove unreferenced files only when older than this (s); must exceed any writer's flush time",
    )
    compact.set_defaults(func=cmd_compact)

    snapshots = sub.add_parser("snapshots", help="list the store's snapshots; --pin names one so expiry keeps it")
    add_store_options(snapshots)
    snapshots.add_argument("--pin", help="name the snapshot (default: the current one) so an answer can be redone")
    snapshots.set_defaults(func=cmd_snapshots)

    claim = sub.add_parser(
        "claim",
        help="make this catalog the one its warehouse belongs to (after moving or restoring the catalog on purpose)",
    )
    add_store_options(claim, reading=False)
    claim.set_defaults(func=cmd_claim)


def add_ingest_options(ingest: argparse.ArgumentParser) -> None:
    """The ingest consumer's options, shared with the deployable process ``consumers/ingest.py``."""
    add_store_options(ingest, reading=False)
    ingest.add_argument("--group", help="consumer group (env LINEAGE_GROUP_ID, default lineage-ingest)")
    ingest.add_argument("--instance-id", help="static group membership id, unique per process (fast restarts)")
    ingest.add_argument("--from-file", help="ingest an Avro container file (backfill/replay) instead of Kafka")
    # --segment-rows is the name from before the Iceberg store; kept so existing scripts keep working
    ingest.add_argument(
        "--commit-rows",
        "--segment-rows",
        dest="segment_rows",
        type=count,
        default=50_000,
        help="rows buffered before a commit to the store (default 50,000)",
    )
    ingest.add_argument(
        "--commit-interval",
        type=seconds,
        default=2.0,
        help="commit at least this often, in seconds (default 2; every commit is an Iceberg snapshot: "
        "a busy production topic does well with 30 to 60)",
    )
    ingest.add_argument("--exit-when-idle", type=seconds, default=None, help="stop after this many idle seconds")
    ingest.add_argument(
        "--no-holdings",
        action="store_true",
        help="do not bring the holdings table up to date when stopping (or run no holdings maintainer "
        "beside --processes): another process keeps them",
    )
    add_kafka_options(ingest)


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestOptions:
    """One ingest consumer's options as given (None: from the environment's ``LINEAGE_*`` settings).

    ``lineage ingest`` and the deployable ``consumers.ingest`` build it from their options
    (``from_args``); a supervisor starts each child process with ``argv()``, the options that give
    the same ``IngestOptions`` again. Only what was given is passed on: a setting from the
    environment (a catalog URI, say) reaches a child through its environment, never its command line.
    """

    store: str | None = None
    catalog_uri: str | None = None
    warehouse: str | None = None
    bootstrap_servers: str | None = None
    topic: str | None = None
    group: str | None = None
    instance_id: str | None = None
    from_file: str | None = None
    commit_rows: int = 50_000
    commit_interval: float = 2.0
    exit_when_idle: float | None = None
    holdings: bool = True

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> IngestOptions:
        """The options ``add_ingest_options`` declared, as parsed."""
        return cls(store=args.store, catalog_uri=args.catalog_uri, warehouse=args.warehouse,
                   bootstrap_servers=args.bootstrap_servers, topic=args.topic, group=args.group,
                   instance_id=args.instance_id, from_file=args.from_file, commit_rows=args.segment_rows,
                   commit_interval=args.commit_interval, exit_when_idle=args.exit_when_idle,
                   holdings=not args.no_holdings)  # fmt: skip

    def store_argv(self) -> list[str]:
        """The store options given (for a holdings maintainer beside the consumers)."""
        given = {"--store": self.store, "--catalog-uri": self.catalog_uri, "--warehouse": self.warehouse}
        return [f"{option}={value}" for option, value in given.items() if value is not None]

    def argv(self) -> list[str]:
        """The options that give these again (``from_args`` of their parse is equal to this)."""
        given = {"--bootstrap-servers": self.bootstrap_servers, "--topic": self.topic, "--group": self.group,
                 "--instance-id": self.instance_id, "--from-file": self.from_file,
                 "--exit-when-idle": self.exit_when_idle}  # fmt: skip
        out = [*self.store_argv(), f"--commit-rows={self.commit_rows}", f"--commit-interval={self.commit_interval!r}"]
        out += [f"{option}={value!r}" if isinstance(value, float) else f"{option}={value}"
                for option, value in given.items() if value is not None]  # fmt: skip
        return out if self.holdings else [*out, "--no-holdings"]

    def settings(self) -> Settings:
        """Settings from the environment, with these options over them."""
        return settings_from(self._named())

    def location(self, settings: Settings) -> StoreLocation:
        """The store these options and ``settings`` name; a path Iceberg cannot hold is refused naming its option."""
        return location_for(self._named(), settings, Path(self.store) if self.store else None)

    def _named(self) -> argparse.Namespace:
        """The store and Kafka options as ``options`` reads them (to blame the option that was given)."""
        return argparse.Namespace(store=self.store, catalog_uri=self.catalog_uri, warehouse=self.warehouse,
                                  bootstrap_servers=self.bootstrap_servers, topic=self.topic)  # fmt: skip


def cmd_ingest(args: argparse.Namespace) -> int:
    """``lineage ingest``: ``run_ingest`` with the options given."""
    return run_ingest(IngestOptions.from_args(args))


def run_ingest(options: IngestOptions) -> int:
    """Consume the event topic (or an Avro file) into the store until stopped; SIGTERM/SIGINT end it cleanly.

    The one entry of every ingest consumer (``lineage ingest``, ``consumers.ingest``); a bad option
    raises a ``LineageError`` naming it. Returns the exit code.
    """
    import logging

    from lineage.cli.holdings import stop_on_signals

    # first, before the store's libraries load (a second or two): a SIGTERM while starting is a clean stop
    stop = stop_on_signals()
    from lineage.ingest.consumer import IngestConsumer, terminal_progress
    from lineage.logs import configure_logging
    configure_logging(logging.INFO)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = options.settings()
    store_dir = Path(options.store) if options.store else settings.store_dir
    location = options.location(settings)  # a path Iceberg cannot hold fails before anything is made
    if settings.catalog_uri is None:  # the embedded store: a bad folder fails before Kafka is asked
        private_dir(store_dir, "--store" if options.store else "LINEAGE_STORE_DIR")
    taxonomy = taxonomy_for(settings)
    if options.from_file:
        from lineage.ingest.backfill import ingest_file

        stats = ingest_file(Path(options.from_file), settings, store_dir=store_dir, taxonomy=taxonomy)
        print(stats.line(), file=sys.stderr)
        refresh_holdings(options, location)
        return 0
    from lineage.transport.kafka import topic_exists

    if not topic_exists(settings, settings.topic, operation="read"):
        missing = f"no topic {settings.topic} on the broker at {settings.bootstrap_servers}"
        if options.exit_when_idle is not None:  # a one-off run would read nothing and report success
            raise ConfigurationError("--topic", missing)
        logging.getLogger("lineage.ingest").warning("%s yet: waiting for it (a typo in --topic?)", missing)
    consumer = IngestConsumer(
        settings,
        store_dir=store_dir,
        group_id=options.group or settings.group_id,
        taxonomy=taxonomy,
        segment_rows=options.commit_rows,
        flush_interval_s=max(options.commit_interval, 0.1),
        on_progress=terminal_progress,
        instance_id=options.instance_id,
    )
    stats = consumer.run(stop, idle_exit_s=options.exit_when_idle)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(stats.line(), file=sys.stderr)
    refresh_holdings(options, location)
    return 0


def refresh_holdings(options: IngestOptions, location: StoreLocation | None = None) -> None:
    """Bring the holdings up to date with what was stored (unless ``holdings`` is off); its line on stderr.

    Answers read the holdings' events snapshot, so without this a one-off ingest would answer from
    older events. A new SIGTERM or SIGINT (the first one may be what stopped the consumer) ends it
    before its commit, leaving the holdings as they were.
    """
    from lineage.cli.holdings import refresh_once, stop_on_signals
    from lineage.store import Store

    if not options.holdings:
        return
    if location is None:
        location = options.location(options.settings())
    if not Store(location).holds_events():
        return
    done = refresh_once(location, stop_on_signals())
    if done is not None:
        print(done.line(), file=sys.stderr)


MIN_GRACE_S = 600.0  # above any writer's write-to-commit time, retries included


def cmd_compact(args: argparse.Namespace) -> int:
    """Rewrite small files, expire snapshots, remove orphans; print what was done."""
    if args.grace < MIN_GRACE_S:
        # a file younger than this may be a consumer's written-but-not-yet-committed batch
        raise ConfigurationError(
            "--grace", f"must be at least {MIN_GRACE_S:.0f} s: younger unreferenced files may be commits in flight"
        )
    settings = settings_from(args)
    report = store_for(args, settings).compact(
        target_mb=args.target_mb, expire_after_s=args.expire_after, grace_s=args.grace
    )
    print(
        f"rewrote {report.files_in} files into {report.files_out} in {report.groups} commits; "
        f"expired {report.expired} snapshots; removed {report.removed} unreferenced files"
    )
    return 0


def cmd_snapshots(args: argparse.Namespace) -> int:
    """List snapshots (newest last) with their time, operation and tags; pin one with ``--pin``."""
    from lineage.store.snapshots import describe_snapshots, pin

    settings = settings_from(args)
    store = store_for(args, settings)
    if args.pin:
        snapshot_id = pin(store.location, args.pin, store.snapshot)
        print(f"pinned snapshot {snapshot_id} as {args.pin}")
        return 0
    for line in describe_snapshots(store.location):
        print(line)
    return 0


def cmd_claim(args: argparse.Namespace) -> int:
    """Record the catalog the settings name as its warehouse's; writers and deletions through any other are refused."""
    from lineage.store.claim import describe, take_claim

    location = store_for(args, settings_from(args)).location  # a store holding events, or one line naming the option
    print(f"the warehouse of {location.describe()} now belongs to {describe(take_claim(location))}")
    return 0
