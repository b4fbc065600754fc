"""Which catalog a warehouse belongs to: a claim file that refuses a catalog copied or restored apart.

Iceberg catalogs name their files by absolute location. A catalog copied apart from its warehouse
(an embedded catalog file copied elsewhere with ``LINEAGE_WAREHOUSE`` still naming the original
warehouse; a shared catalog restored into another database with the same S3 credentials) names the
very files the original names. A forget, retention run or compaction through such a copy deletes
files the original still reads, and a consumer writing through it adds files the original's orphan
removal deletes. The copy's rows are the same as the original's, so nothing in the catalog tells
them apart; where the catalog lives does (``StoreLocation.identity``):

- an SQLite catalog: its file's real path, or the file itself (filesystem id and inode): either
  matching is the same catalog, so a bind mount or a link to the same file is not refused;
- a PostgreSQL catalog: the cluster's ``system_identifier`` and the database's name;
- both: the catalog's name, which keeps two catalogs of one database apart.

The first writer (or forget, retention run, compaction, pin) records that identity in the
warehouse, at ``<warehouse>/<namespace>/.lineage-claim.json``, beside the tables' folders and never
inside one (so orphan removal never sees it); on local disk it is created only if absent, so of
two first writers one claim stands. Every later one compares (a long-running writer once a minute),
and a catalog that is not the claim's is refused with one line before it writes or deletes
anything. Readers are not checked: reading a copy harms nothing (a staging copy may be queried).
``lineage claim`` records the catalog its settings name, after a move or a restore on purpose.

Not told apart: a copy of an SQLite catalog placed at the same path on another host, and a physical
clone of a PostgreSQL cluster (a base backup, a volume snapshot), which keeps its
``system_identifier``. Other catalog databases are not identified, and not checked.
"""

from __future__ import annotations

import errno
import json
import math
import os
import secrets
import stat
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from lineage.errors import StoreAccessError, StoreClaimedError, StoreError, StoreNotFoundError, StoreUnavailableError
from lineage.private import fsync_dir

if TYPE_CHECKING:
    import pyarrow.fs as pafs
    from pyiceberg.catalog.sql import SqlCatalog

__all__ = ["CLAIM_FILE", "RECHECK_S", "Identity", "check_claim", "claim_path", "describe", "same_catalog", "take_claim"]

CLAIM_FILE = ".lineage-claim.json"
#: A process that found the claim its catalog's trusts it this long: a writer that runs for weeks
#: sees a ``lineage claim`` made elsewhere within a minute, and pays one read a minute, not one a commit.
RECHECK_S = 60.0
_MAX_BYTES = 64 * 1024  # a claim is a line (a path may be 4,096 characters, escaped); anything larger is not ours
_KINDS = {"sqlite": ("path", "file"), "postgresql": ("system", "database")}
_SHOWN = 200  # at most this much of each value in a message
# link(2) refused by the file system itself (vfat, exFAT, FUSE mounts such as gcsfuse): no hard links there
_NO_LINKS = {errno.EPERM, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK}
_checked: dict[tuple[str, str, str, str], float] = {}  # a location -> when its claim was found its own (monotonic)

Identity = dict[str, str]
"""What ``StoreLocation.identity`` gives: ``kind`` (sqlite, postgresql), ``name`` and the kind's two keys."""


class StoreLocation(Protocol):
    """What a claim needs of ``lineage.store.catalog.StoreLocation`` (which calls it: no import back)."""

    @property
    def catalog_uri(self) -> str: ...  # noqa: D102

    @property
    def catalog_name(self) -> str: ...  # noqa: D102

    @property
    def warehouse(self) -> str: ...  # noqa: D102

    @property
    def namespace(self) -> str: ...  # noqa: D102

    @property
    def on_s3(self) -> bool: ...  # noqa: D102

    def describe(self) -> str: ...  # noqa: D102

    def catalog(self) -> SqlCatalog: ...  # noqa: D102

    def identity(self, catalog: SqlCatalog) -> Identity | None: ...  # noqa: D102

    def filesystem(self) -> pafs.FileSystem: ...  # noqa: D102


def claim_path(location: StoreLocation) -> str:
    """Where the claim lives: a pyarrow filesystem path beside the tables' folders."""
    warehouse = location.warehouse.removeprefix("s3://") if location.on_s3 else location.warehouse.removeprefix("file://")
    return f"{warehouse.rstrip('/')}/{location.namespace}/{CLAIM_FILE}"


def same_catalog(claimed: Identity, ours: Identity) -> bool:
    """Whether ``claimed`` names the catalog ``ours`` describes (SQLite: its path or its file)."""
    if claimed.get("kind") != ours["kind"] or claimed.get("name") != ours["name"]:
        return False
    first, second = _KINDS[ours["kind"]]
    if ours["kind"] == "sqlite":
        return claimed.get(first) == ours[first] or claimed.get(second) == ours[second]
    return claimed.get(first) == ours[first] and claimed.get(second) == ours[second]


def describe(identity: Identity) -> str:
    """An identity in words for a message, one line whatever a planted claim holds (no secret in it)."""
    shown = {k: _shown(v) for k, v in identity.items()}
    if identity["kind"] == "sqlite":
        return f"the SQLite catalog '{shown['name']}' in {shown['path']}"
    return f"the PostgreSQL catalog '{shown['name']}' in database {shown['database']} of cluster {shown['system']}"


def _shown(value: str) -> str:
    """``value`` cut to ``_SHOWN`` characters, anything not printable escaped (a line break, a control)."""
    cut = value if len(value) <= _SHOWN else value[:_SHOWN] + "..."
    return "".join(c if c.isprintable() and c != "\\" else c.encode("unicode_escape").decode("ascii") for c in cut)


def check_claim(location: StoreLocation, catalog: SqlCatalog | None = None) -> None:
    """Refuse (``StoreClaimedError``) a catalog its warehouse's claim does not name; claim an unclaimed one.

    Called before a write or a deletion; a claim found ours is trusted for ``RECHECK_S``.
    """
    key = (location.catalog_uri, location.catalog_name, location.warehouse, location.namespace)
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
        found = _create(location, ours)
    if not same_catalog(found, ours):
        upgraded = ours["kind"] == "postgresql" and {**found, "system": ours["system"]} == ours
        raise StoreClaimedError(
            f"--store: {location.describe()} is not the catalog its warehouse belongs to: the warehouse's "
            f"{CLAIM_FILE} names {describe(found)}, this is {describe(ours)}. A catalog copied or restored apart "
            "from its warehouse names the same files, and writing or deleting through it would lose the other's "
            "data; if this catalog now replaces that one"
            + (" (a major upgrade, by pg_upgrade or a dump, gives a cluster a new identifier)" if upgraded else "")
            + ", run `lineage claim` with these settings",
            path=location.describe(),
        )
    _checked[key] = time.monotonic()


def take_claim(location: StoreLocation) -> Identity:
    """Record this catalog as the warehouse's (``lineage claim``), replacing any claim; returns its identity."""
    catalog = location.catalog()
    ours = location.identity(catalog)
    if ours is None:
        raise StoreError(f"--store: {location.describe()}: only SQLite and PostgreSQL catalogs can be claimed")
    if not _namespace_exists(location):
        raise StoreNotFoundError(f"{location.describe()} has no tables yet: nothing to claim", path=location.describe())
    try:
        if location.on_s3:
            _put(location, _body(ours))
        else:
            _replace(location, ours)
    except OSError as exc:
        raise _io_error(exc, location, "writing") from None
    _checked.pop((location.catalog_uri, location.catalog_name, location.warehouse, location.namespace), None)
    return ours


def _replace(location: StoreLocation, ours: Identity) -> None:
    """Put ``ours`` in the claim's place whatever is there (a claim, a link, a pipe), never following it.

    The old claim stays until the rename: a writer reading meanwhile finds one or the other, never none.
    """
    path = claim_path(location)
    if os.path.isdir(path) and not os.path.islink(path):
        raise StoreError(
            f"--store: the warehouse's {CLAIM_FILE} of {location.describe()} is a folder: move it away, then run "
            "`lineage claim` again",
            path=location.describe(),
        )
    temp = _written(path, ours)
    try:
        os.replace(temp, path)  # a rename replaces a link or a pipe itself, never what it points at
    finally:
        _unlink(temp)
    fsync_dir(path.rsplit("/", 1)[0])


def _written(path: str, ours: Identity) -> str:
    """A new private file beside ``path`` holding the claim ``ours``, flushed to disk; its name."""
    temp = f"{path}.{secrets.token_hex(8)}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(_body(ours))
        f.flush()
        os.fsync(f.fileno())
    return temp


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass  # gone already (renamed into place)


def _namespace_exists(location: StoreLocation) -> bool:
    """Whether a table was made: its folder exists (an object store has no folders: always)."""
    return location.on_s3 or os.path.isdir(claim_path(location).rsplit("/", 1)[0])


def _body(identity: Identity) -> bytes:
    return json.dumps({**identity, "claimed_at": datetime.now(UTC).isoformat()}).encode() + b"\n"


def _create(location: StoreLocation, ours: Identity) -> Identity:
    """Write ``ours`` as the claim unless one appeared meanwhile; the claim that stands.

    On local disk the claim is linked into place, which fails if it exists: of two first writers,
    one claim stands and the other writer is refused. An object store here has no create-if-absent
    (pyarrow's S3 writes unconditionally), so two first writers at the same instant may both pass.
    """
    if location.on_s3:
        try:
            _put(location, _body(ours))
        except OSError as exc:
            raise _io_error(exc, location, "writing") from None
        return _read(location) or ours
    path = claim_path(location)
    temp = ""
    try:
        temp = _written(path, ours)
        try:
            os.link(temp, path)
        except FileExistsError:
            pass  # another first writer claimed it: theirs stands
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            # no hard links on this file system: renamed into place, so of two first writers at the
            # same instant the last one's claim stands (as on S3) and the other passed once
            if not os.path.lexists(path):
                os.replace(temp, path)
        fsync_dir(path.rsplit("/", 1)[0])
    except OSError as exc:
        raise _io_error(exc, location, "writing") from None
    finally:
        if temp:
            _unlink(temp)
    return _read(location) or ours


def _put(location: StoreLocation, body: bytes) -> None:
    with location.filesystem().open_output_stream(claim_path(location)) as stream:
        stream.write(body)


def _read(location: StoreLocation) -> Identity | None:
    """The identity the claim names; None when there is no claim."""
    path = claim_path(location)
    try:
        if location.on_s3:
            with location.filesystem().open_input_stream(path) as stream:
                data = stream.read(_MAX_BYTES + 1)
        else:
            # a link or a pipe planted in the warehouse is not a claim (and a pipe must not block us)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as f:
                data = f.read(_MAX_BYTES + 1) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    except FileNotFoundError:
        return None
    except OSError as exc:
        if location.on_s3 or not os.path.islink(path):
            raise _io_error(exc, location, "reading") from None
        data = b""  # a symbolic link planted as the claim is not one (below), not a fault to retry
    claim = _parsed(data)
    if claim is None:
        raise StoreError(
            f"--store: the warehouse's {CLAIM_FILE} of {location.describe()} is not a claim; "
            "run `lineage claim` to write it again",
            path=location.describe(),
        )
    return claim


def _parsed(data: bytes) -> Identity | None:
    """The claim's identity if ``data`` is one of ours (small, one object of short printable strings)."""
    if len(data) > _MAX_BYTES or not data.lstrip().startswith(b"{"):
        return None
    try:
        claim = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(claim, dict) or claim.get("kind") not in _KINDS:
        return None
    keys = ("kind", "name", *_KINDS[claim["kind"]])
    # any characters (a path may hold a tab): a message shows them escaped (``describe``)
    if not all(isinstance(claim.get(k), str) and 0 < len(claim[k]) <= 4096 for k in keys):
        return None
    return {k: claim[k] for k in keys}


def _io_error(exc: OSError, location: StoreLocation, doing: str) -> StoreError:
    """One line naming the store, the claim and what to do; never a secret (an OSError names a path at most)."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    lowered = text.lower()
    where = f"{doing} the warehouse's {CLAIM_FILE} of {location.describe()}"
    if isinstance(exc, PermissionError) or any(w in lowered for w in ("access denied", "forbidden", "403")):
        return StoreAccessError(
            f"{where}: access refused: writers need read and write on {claim_path(location)}", path=location.describe()
        )
    return StoreUnavailableError(f"{where}: {text}", path=location.describe())
