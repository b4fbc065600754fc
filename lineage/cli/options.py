"""The options the commands and the deployable processes share: argument types, store and Kafka options.

Public, so ``consumers/`` (the processes a service manager runs) declare and read the same options
as ``lineage`` without reaching into the CLI's private helpers.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from lineage.errors import ConfigurationError
from lineage.settings import Settings

if TYPE_CHECKING:
    from lineage.store import StoreLocation

__all__ = [
    "add_kafka_options",
    "add_listen_options",
    "add_store_options",
    "count",
    "count_or_zero",
    "location_for",
    "port_number",
    "seconds",
    "settings_from",
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
