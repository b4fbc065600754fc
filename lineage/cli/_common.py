"""What the command groups share: the taxonomy, times and stores from options, answer and world options.

The options the deployable processes share too (argument types, store and Kafka options) are public,
in ``lineage.cli.options``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from lineage.cli.options import add_store_options, count, count_or_zero, location_for
from lineage.errors import ConfigurationError
from lineage.settings import Settings

if TYPE_CHECKING:
    from lineage.contract.policy import Policy
    from lineage.contract.taxonomy import Taxonomy
    from lineage.store import Store, StoreLocation
    from lineage.world.sim import WorldSize

__all__ = [
    "add_answer_options",
    "add_world_options",
    "cli_actor",
    "existing_location",
    "parse_time",
    "policies_from",
    "store_for",
    "taxonomy_for",
    "told",
    "world_size",
]


def cli_actor() -> str:
    """Who the console's audit trail names for a command: ``cli:`` and the operating-system user.

    The user is the process's real uid, never ``getpass.getuser()``: that reads ``$LOGNAME`` and
    ``$USER`` first, so ``USER=alice lineage users add ...`` would be recorded as alice's doing.
    """
    import os
    import pwd

    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid without a passwd entry (some containers): the number itself
        user = str(os.getuid())
    return f"cli:{user}"


def taxonomy_for(settings: Settings) -> Taxonomy:
    """The default taxonomy, or the one in ``LINEAGE_TAXONOMY_DIR``."""
    from lineage.contract.taxonomy import Taxonomy, default_taxonomy

    return Taxonomy.load([settings.taxonomy_dir]) if settings.taxonomy_dir else default_taxonomy()


def parse_time(option: str, text: str | None) -> datetime | None:
    """The time given as ``option`` (None when not given); the CLI refuses one without an offset.

    ``lineage.contract.times.parse_time`` is the one parser; this is the CLI's rule for it.
    """
    from lineage.contract.times import Bare
    from lineage.contract.times import parse_time as parse

    return parse(option, text, bare=Bare.REFUSED)


def told(facts: Mapping[str, object]) -> None:
    """Say an answer's stamp on stderr as well: its lag and its warning (a person at a terminal reads those first)."""
    if facts.get("lag"):
        print(f"lineage: note: {facts['lag']}", file=sys.stderr)
    if facts.get("warning"):
        print(f"lineage: warning: {facts['warning']}", file=sys.stderr)


def store_for(args: argparse.Namespace, settings: Settings) -> Store:
    """The store the options and settings name, pinned to one snapshot; one a consumer has written to.

    A mistyped path must not answer "no data held" or "no violations": a reading command on a
    folder that is not a store, or on a store with nothing committed, is an error naming the option.
    Every query of the command then reads the same snapshot, whose id the answer carries
    (``store_snapshot``, stamped by ``lineage.service``) so it can be given again from it (``--snapshot``)
    however much is stored later.
    """
    from lineage.errors import StoreNotFoundError
    from lineage.store import Store

    location, option = existing_location(args, settings)
    store = Store(location, snapshot=getattr(args, "snapshot", None))
    try:
        # with no --snapshot: the events snapshot the newest holdings reflect (events stored since
        # wait for the holdings maintainer; the answer's stamp says how many, see lineage.service.read)
        snapshot_id = store.pinned().snapshot_id
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
