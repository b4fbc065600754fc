"""Filling and keeping the store: ``lineage ingest``, ``compact`` and ``snapshots``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lineage.cli._common import (
    add_kafka_options,
    add_store_options,
    count,
    location_for,
    seconds,
    settings_from,
    store_for,
    taxonomy_for,
)
from lineage.errors import ConfigurationError
from lineage.private import private_dir

if TYPE_CHECKING:
    from lineage.store import StoreLocation

__all__ = ["add_ingest_options", "cmd_ingest", "refresh_holdings", "register"]


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


def cmd_ingest(args: argparse.Namespace) -> int:
    """Consume the event topic (or an Avro file) into the store until stopped; SIGTERM/SIGINT end it cleanly."""
    import logging

    from lineage.cli.holdings import stop_on_signals

    # first, before the store's libraries load (a second or two): a SIGTERM while starting is a clean stop
    stop = stop_on_signals()
    from lineage.ingest.consumer import IngestConsumer, terminal_progress

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = settings_from(args)
    store_dir = Path(args.store) if args.store else settings.store_dir
    location = location_for(args, settings, store_dir)  # a path Iceberg cannot hold fails before anything is made
    if settings.catalog_uri is None:  # the embedded store: a bad folder fails before Kafka is asked
        private_dir(store_dir, "--store" if args.store else "LINEAGE_STORE_DIR")
    taxonomy = taxonomy_for(settings)
    if args.from_file:
        from lineage.ingest.backfill import ingest_file

        stats = ingest_file(Path(args.from_file), settings, store_dir=store_dir, taxonomy=taxonomy)
        print(stats.line(), file=sys.stderr)
        refresh_holdings(args, location)
        return 0
    from lineage.transport.kafka import topic_exists

    if not topic_exists(settings, settings.topic, operation="read"):
        missing = f"no topic {settings.topic} on the broker at {settings.bootstrap_servers}"
        if args.exit_when_idle is not None:  # a one-off run would read nothing and report success
            raise ConfigurationError("--topic", missing)
        logging.getLogger("lineage.ingest").warning("%s yet: waiting for it (a typo in --topic?)", missing)
    consumer = IngestConsumer(
        settings,
        store_dir=store_dir,
        group_id=args.group or settings.group_id,
        taxonomy=taxonomy,
        segment_rows=args.segment_rows,
        flush_interval_s=max(args.commit_interval, 0.1),
        on_progress=terminal_progress,
        instance_id=args.instance_id,
    )
    stats = consumer.run(stop, idle_exit_s=args.exit_when_idle)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(stats.line(), file=sys.stderr)
    refresh_holdings(args, location)
    return 0


def refresh_holdings(args: argparse.Namespace, location: StoreLocation | None = None) -> None:
    """Bring the holdings up to date with what was stored (unless ``--no-holdings``); its line on stderr.

    Answers read the holdings' events snapshot, so without this a one-off ingest would answer from
    older events. A new SIGTERM or SIGINT (the first one may be what stopped the consumer) ends it
    before its commit, leaving the holdings as they were.
    """
    from lineage.cli.holdings import refresh_once, stop_on_signals
    from lineage.store import Store

    if args.no_holdings:
        return
    if location is None:
        location = location_for(args, settings_from(args), Path(args.store) if args.store else None)
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
