"""Which catalog a warehouse belongs to: a claim file that refuses a catalog copied or restored apart.

Iceberg catalogs name their files by absolute location. A catalog copied apart from its warehouse
(an embedded catalog file copied elsewhere with ``LINEAGE_WAREHOUSE`` still naming the original
warehouse; a shared catalog restored into another database with the same S3 credentials) names the
very files the original names. A forget, retention run or compaction through such a copy deletes
files the original still reads, and a consumer writing through it adds files the original's orphan
removal deletes. The copy's rows are the same as the original's, so nothing in the catalog tells
them apart; where the catalog lives does:

- an SQLite catalog: the real path of its file;
- a PostgreSQL catalog: the cluster's ``system_identifier`` (``pg_control_system()``, readable by any
  role; a streaming replica promoted after a failover keeps it) and the database's name.

The first writer (or forget, retention run, compaction) records that identity in the warehouse, at
``<warehouse>/<namespace>/.lineage-claim.json``, beside the tables' folders and never inside one (so
orphan removal never sees it). Every later one compares (once a minute in a long-running process), and a catalog that is
not the claim's is refused with one line before it writes or deletes anything. Readers are not
checked: reading a copy harms nothing (a staging copy of a catalog may be queried). After a catalog
is moved or restored on purpose, ``lineage claim`` records the new one. Other catalog databases
are not identified, and not checked.
"""

from __future__ import annotations

import json
import math
import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from lineage.errors import StoreClaimedError, StoreError, StoreNotFoundError, StoreUnavailableError
from lineage.private import open_private

if TYPE_CHECKING:
    import pyarrow.fs as pafs
    from pyiceberg.catalog.sql import SqlCatalog


class StoreLocation(Protocol):
    """What a claim needs of ``lineage.store.catalog.StoreLocation`` (which calls it: no import back)."""

    @property
    def catalog_uri(self) -> str: ...  # noqa: D102

    @property
    def warehouse(self) -> str: ...  # noqa: D102

    @property
    def namespace(self) -> str: ...  # noqa: D102

    @property
    def on_s3(self) -> bool: ...  # noqa: D102

    def describe(self) -> str: ...  # noqa: D102

    def catalog(self) -> SqlCatalog: ...  # noqa: D102

    def identity(self, catalog: SqlCatalog) -> str | None: ...  # noqa: D102

    def filesystem(self) -> pafs.FileSystem: ...  # noqa: D102

__all__ = ["CLAIM_FILE", "RECHECK_S", "check_claim", "claim_path", "take_claim"]

CLAIM_FILE = ".lineage-claim.json"
_MAX_BYTES = 64 * 1024  # a claim is a line; anything larger is not one of ours
#: A process that found the claim its catalog's trusts it this long: a writer that runs for weeks
#: sees a ``lineage claim`` made elsewhere within a minute, and pays one read a minute, not one a commit.
RECHECK_S = 60.0
_checked: dict[tuple[str, str, str], float] = {}  # (catalog, warehouse, namespace) -> when found ours (monotonic)


def claim_path(location: StoreLocation) -> str:
    """Where the claim lives: a pyarrow filesystem path beside the tables' folders."""
    warehouse = location.warehouse.removeprefix("s3://") if location.on_s3 else location.warehouse.removeprefix("file://")
    return f"{warehouse.rstrip('/')}/{location.namespace}/{CLAIM_FILE}"


def check_claim(location: StoreLocation, catalog: SqlCatalog | None = None) -> None:
    """Refuse (``StoreClaimedError``) a catalog its warehouse's claim does not name; claim an unclaimed one.

    Called before a write or a deletion; a claim found ours is trusted for ``RECHECK_S``.
    """
    key = (location.catalog_uri, location.warehouse, location.namespace)
    if time.monotonic() - _checked.get(key, -math.inf) < RECHECK_S:
        return
    catalog = catalog or location.catalog()
    ours = location.identity(catalog)
    if ours is None:
        return
    found = _read(location)
    if found is None:
        if not _namespace_exists(location):
            return  # no table yet: nothing to protect, and the first table's writer claims it
        _write(location, ours)
        found = _read(location)  # two first writers: the claim that stayed decides
    if found != ours:
        raise StoreClaimedError(
            f"--store: {location.describe()} is not the catalog its warehouse belongs to (the warehouse's "
            f"{CLAIM_FILE} names {found}, this catalog is {ours}): a catalog copied or restored apart from "
            "its warehouse names the same files, and writing or deleting through it would lose the other's "
            "data. If this catalog now replaces that one, run `lineage claim` with these settings",
            path=location.describe(),
        )
    _checked[key] = time.monotonic()


def take_claim(location: StoreLocation) -> str:
    """Record this catalog as the warehouse's (``lineage claim``); returns its identity."""
    catalog = location.catalog()
    ours = location.identity(catalog)
    if ours is None:
        raise StoreError(f"--store: {location.describe()}: only SQLite and PostgreSQL catalogs can be claimed")
    if not _namespace_exists(location):
        raise StoreNotFoundError(f"{location.describe()} has no tables yet: nothing to claim", path=location.describe())
    _write(location, ours)
    _checked.pop((location.catalog_uri, location.warehouse, location.namespace), None)
    return ours


def _namespace_exists(location: StoreLocation) -> bool:
    """Whether a table was made: its folder exists (an object store has no folders: always)."""
    return location.on_s3 or os.path.isdir(claim_path(location).rsplit("/", 1)[0])


def _read(location: StoreLocation) -> str | None:
    """The identity the claim names; None when there is no claim."""
    path = claim_path(location)
    try:
        if location.on_s3:
            with location.filesystem().open_input_stream(path) as stream:
                data = stream.read(_MAX_BYTES + 1)
        else:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)  # a link planted in the warehouse is not a claim
            with os.fdopen(fd, "rb") as f:
                data = f.read(_MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _io_error(exc, location, f"reading {CLAIM_FILE}") from None
    try:
        claim = json.loads(data) if len(data) <= _MAX_BYTES else None
        identity = claim["catalog"] if isinstance(claim, dict) else None
    except (ValueError, KeyError):
        identity = None
    if not isinstance(identity, str):
        raise StoreError(
            f"--store: the warehouse's {CLAIM_FILE} of {location.describe()} is not a claim; "
            "run `lineage claim` to write it again",
            path=location.describe(),
        )
    return identity


def _write(location: StoreLocation, identity: str) -> None:
    body = json.dumps({"catalog": identity, "claimed_at": datetime.now(UTC).isoformat()}).encode() + b"\n"
    path = claim_path(location)
    try:
        if location.on_s3:
            with location.filesystem().open_output_stream(path) as stream:
                stream.write(body)
        else:
            with open_private(path, "warehouse", "wb") as f:
                f.write(body)
    except OSError as exc:
        raise _io_error(exc, location, f"writing {CLAIM_FILE}") from None


def _io_error(exc: OSError, location: StoreLocation, doing: str) -> StoreError:
    """One line naming the store and the step, never a secret (an OSError names a path at most)."""
    return StoreUnavailableError(f"{doing} of {location.describe()}: {exc.strerror or exc}", path=location.describe())
