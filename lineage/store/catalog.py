"""Where the store is: an Iceberg catalog and a warehouse, opened from settings; errors made plain.

Two shapes, one code path (pyiceberg's SQL catalog):

- embedded (the default): a SQLite catalog file and a warehouse folder inside ``store_dir``, so
  ``./run demo`` needs nothing else; one host only (SQLite serialises writers on its file lock);
- many hosts: a PostgreSQL catalog and an S3 warehouse that every consumer and reader shares.

Passwords and keys come from ``Settings`` (the environment or a file), go to the client libraries
in-process, and are never part of a message: ``StoreLocation.describe`` is what errors show.
"""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote, unquote, urlsplit

from lineage.errors import (
    ConfigurationError,
    StoreAccessError,
    StoreConflictError,
    StoreCorruptError,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
)
from lineage.private import private_dir
from lineage.settings import Settings
from lineage.store.layout import EVENTS, PROVENANCE, TABLE_PROPERTIES
from lineage.store.manifests import local_path
from lineage.store.plans import Versions

if TYPE_CHECKING:
    # pyiceberg, SQLAlchemy and pyarrow are imported where a catalog or table is opened: a process
    # reading a store's kept pins (``lineage.store.plans``) answers without importing them (~1 s)
    import pyarrow.fs as pafs
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table
    from pyiceberg.table.sorting import SortOrder

__all__ = ["StoreLocation", "as_location", "read_error", "store_error"]

CATALOG_FILE = "catalog.db"
PLANS_FILE = "plans.json"  # an embedded store's last plans for the next process (``lineage.store.plans``)
WAREHOUSE = "warehouse"
_OURS = "WHERE catalog_name = :catalog AND table_namespace = :namespace ORDER BY table_name"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreLocation:
    """A catalog and a warehouse: everything needed to open the store's table, secrets kept out of repr."""

    root: Path | None
    """The embedded store's folder, when there is one (its catalog file and local warehouse)."""
    catalog_uri: str
    warehouse: str
    catalog_name: str = "lineage"
    namespace: str = "lineage"
    catalog_password: str | None = field(default=None, repr=False)
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = field(default=None, repr=False)
    s3_secret_access_key: str | None = field(default=None, repr=False)
    commit_retries: int = 20

    def __post_init__(self) -> None:
        """Refuse a folder or warehouse holding ``?`` or ``#`` (pyiceberg cuts a location there)."""
        for setting, value in (("store_dir", str(self.root or "")), ("warehouse", self.warehouse)):
            if "%" in value and not value.startswith("s3://"):
                # SQLAlchemy decodes %XX in a sqlite URL: "st%41" would open the catalog of "stA"
                raise ConfigurationError(setting, f"{value!r} contains '%': a catalog file URL would decode it")
            if "?" in value or "#" in value:
                # "file:///data/store?/warehouse/..." is the file /data/store to pyiceberg: a write lands outside
                raise ConfigurationError(setting, f"{value!r} contains '?' or '#': Iceberg locations cannot hold them")

    @classmethod
    def embedded(cls, root: Path, **kwargs: Any) -> StoreLocation:
        """The default: a SQLite catalog and a warehouse folder inside ``root``."""
        root = root.absolute()
        return cls(
            root=root, catalog_uri=f"sqlite:///{root / CATALOG_FILE}", warehouse=str(root / WAREHOUSE), **kwargs
        )

    @classmethod
    def from_settings(cls, settings: Settings, store_dir: Path | None = None) -> StoreLocation:
        """The store the settings name (``store_dir`` overrides ``settings.store_dir``)."""
        root = (store_dir or settings.store_dir).absolute()
        common: dict[str, Any] = {
            "catalog_name": settings.catalog_name,
            "namespace": settings.namespace,
            "catalog_password": settings.catalog_password,
            "s3_endpoint": settings.s3_endpoint,
            "s3_region": settings.s3_region,
            "s3_access_key_id": settings.s3_access_key_id,
            "s3_secret_access_key": settings.s3_secret_access_key,
            "commit_retries": settings.commit_retries,
        }
        if settings.catalog_uri is None and settings.warehouse is None:
            return cls.embedded(root, **common)
        warehouse = settings.warehouse or str(root / WAREHOUSE)
        if warehouse.startswith("file://"):
            warehouse = warehouse.removeprefix("file://")
        if "://" not in warehouse:
            warehouse = str(Path(warehouse).absolute())
        return cls(
            root=root if settings.catalog_uri is None else None,
            catalog_uri=settings.catalog_uri or f"sqlite:///{root / CATALOG_FILE}",
            warehouse=warehouse,
            **common,
        )

    @property
    def on_s3(self) -> bool:
        """Whether the table's files are in an object store."""
        return self.warehouse.startswith("s3://")

    def describe(self) -> str:
        """The store in words for messages: its folder, or its catalog (no password) and warehouse."""
        if self.root is not None and not self.on_s3:
            return f"the store at {self.root}"
        from sqlalchemy.engine import make_url

        url = make_url(self.catalog_uri).set(query={}).render_as_string(hide_password=True)
        return f"the store in catalog {url} with warehouse {self.warehouse}"

    def catalog(self, *, create: bool = False) -> SqlCatalog:
        """Open the catalog; with ``create``, make the embedded folder and warehouse (private) when missing.

        Without ``create`` nothing is made: opening a SQLite file that is missing, or is not yet a
        catalog, would create one (a reader pointed at a wrong folder must change nothing there).
        """
        if create:
            if self.root is not None and self.catalog_uri.startswith("sqlite:"):
                private_dir(self.root)
            if not self.on_s3:
                private_dir(Path(self.warehouse))
        else:
            self._refuse_missing_sqlite()
        from pyiceberg.catalog.sql import SqlCatalog
        from sqlalchemy.engine import make_url

        url = make_url(self.catalog_uri)
        if self.catalog_password is not None:
            url = url.set(password=self.catalog_password)
        properties = {
            "uri": url.render_as_string(hide_password=False),
            "warehouse": self.warehouse if self.on_s3 else f"file://{self.warehouse}",
            **self.s3_properties(),
        }
        for attempt in range(_CREATION_TRIES):
            try:
                return SqlCatalog(self.catalog_name, **properties)
            except Exception as exc:  # noqa: BLE001 - every failure becomes one line naming the store
                if not (_lost_creation_race(exc) and attempt + 1 < _CREATION_TRIES):
                    raise store_error(exc, self, "opening the catalog") from None
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def versions(self, catalog: SqlCatalog | None = None) -> Versions:
        """Each table's current metadata file, in one catalog query: equal answers, unchanged tables.

        Iceberg metadata files are never rewritten, so a reader that planned a table's files can reuse
        them while its metadata location stays the same (loading and planning cost ~50 ms a time).
        Without ``catalog``, an embedded store's catalog file is read with ``sqlite3`` (~1 ms, no
        pyiceberg); a shared catalog is opened for it.
        """
        params = {"catalog": self.catalog_name, "namespace": self.namespace}
        if catalog is None and (path := self.catalog_file()) is not None:
            return self._file_versions(path, params)
        import sqlalchemy

        catalog = catalog or self.catalog()
        query = sqlalchemy.text(f"SELECT table_name, metadata_location FROM iceberg_tables {_OURS}")
        try:
            with catalog.engine.connect() as conn:
                rows = conn.execute(query, params).all()
        except Exception as exc:  # noqa: BLE001
            raise store_error(exc, self, "reading the catalog") from None
        return tuple((str(name), str(where)) for name, where in rows)

    def identity(self, catalog: SqlCatalog) -> dict[str, str] | None:
        """Where the catalog lives, in words that survive a restart and differ for a copy (None: not known).

        ``lineage.store.claim`` compares it with the warehouse's claim. An SQLite catalog: its file's
        real path, and the file itself (filesystem id and inode: the same file seen through a bind
        mount or a hard link); either one matching is the same catalog. A PostgreSQL one: the
        cluster's ``system_identifier`` (any role may read it unless revoked; a replica promoted
        after a failover keeps it) and the database's name. Both with the catalog's name, which
        keeps catalogs apart inside one database.
        """
        import sqlalchemy
        from sqlalchemy.engine import make_url

        url = make_url(self.catalog_uri)
        backend = url.get_backend_name()
        if backend == "sqlite":
            named = sqlite_file(self.catalog_uri)
            if named is None:
                return None  # an in-memory catalog: no warehouse outlives it to protect
            path = os.path.realpath(named)
            try:
                found, fs = os.stat(path), os.statvfs(path)
            except OSError as exc:
                raise store_error(exc, self, "reading which file holds the catalog") from None
            file = f"{fs.f_fsid:x}:{found.st_ino}"
            return {"kind": "sqlite", "name": self.catalog_name, "path": path, "file": file}
        if backend != "postgresql":
            return None
        try:
            with catalog.engine.connect() as conn:
                system = conn.execute(sqlalchemy.text("SELECT system_identifier FROM pg_control_system()")).scalar()
                database = conn.execute(sqlalchemy.text("SELECT current_database()")).scalar()
        except Exception as exc:  # noqa: BLE001 - the database's own error, made one line
            if "permission denied" in str(exc).lower():
                raise StoreAccessError(
                    "reading which cluster holds the catalog: the catalog's role may not run pg_control_system(); "
                    "GRANT EXECUTE ON FUNCTION pg_control_system() TO that role (writers need it)",
                    path=self.describe(),
                ) from None
            raise store_error(exc, self, "reading which database holds the catalog") from None
        return {"kind": "postgresql", "name": self.catalog_name, "system": str(system), "database": str(database)}

    def catalog_file(self) -> Path | None:
        """The embedded store's SQLite catalog file (None: a catalog named by a URI)."""
        if self.root is None or self.catalog_uri != f"sqlite:///{self.root / CATALOG_FILE}":
            return None
        return self.root / CATALOG_FILE

    def plans_file(self) -> Path | None:
        """Where an embedded store keeps its last plans (``lineage.store.plans``; None: a shared store keeps none)."""
        if self.on_s3 or self.catalog_file() is None or self.root is None:
            return None
        return self.root / PLANS_FILE

    def _file_versions(self, path: Path, params: dict[str, str]) -> Versions:
        """``versions`` read from the catalog file; a missing file or one holding no catalog is no store."""
        if not path.is_file():
            self._refuse_missing_sqlite()
        try:
            # read-write, never create (``_refuse_missing_sqlite`` says why)
            con = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=rw", uri=True)
            try:
                rows = con.execute(
                    f"SELECT table_name, metadata_location FROM iceberg_tables {_OURS}", params
                ).fetchall()
            finally:
                con.close()
        except sqlite3.DatabaseError as exc:
            self._refuse_missing_sqlite()  # no catalog table in it, or not a database at all (a stray file)
            raise store_error(exc, self, "reading the catalog") from None
        for name, where in rows:
            self.refuse_foreign(str(name), str(where))
        return tuple((str(name), str(where)) for name, where in rows)

    def refuse_foreign(self, name: str, *locations: str) -> None:
        """Refuse a table of an embedded store whose files live outside its warehouse: a folder copied or moved.

        Iceberg keeps absolute paths, so a copied store's catalog still names the original's files:
        a forget or retention run on the copy would remove the original's files (its holdings, its
        events), and any write would land in the original's folder. ``locations``: the table's
        metadata file, and where it writes (``Table.location``). Paths are compared resolved, so a
        store reached through a link or a ``..`` is the same store. A shared catalog may name any
        warehouse; an embedded one names its own. An embedded catalog whose warehouse is elsewhere
        (``LINEAGE_WAREHOUSE``) cannot tell a copy of its folder: the copy names that same warehouse.
        """
        if self.catalog_file() is None or self.on_s3:
            return
        warehouse = os.path.realpath(self.warehouse)
        for location in locations:
            where = local_path(location)
            if where is None or not Path(os.path.realpath(where)).is_relative_to(warehouse):
                raise StoreError(
                    f"--store: the {name} table of {self.describe()} keeps its files outside the folder's "
                    f"warehouse ({self.warehouse}): a store folder copied or moved still names the original's "
                    "files (Iceberg keeps absolute paths); use the store at its original place",
                    path=self.describe(),
                )

    def _refuse_missing_sqlite(self) -> None:
        """A SQLite catalog file that is absent, or holds no catalog, is ``StoreNotFoundError`` (never created here)."""
        from sqlalchemy.engine import make_url

        url = make_url(self.catalog_uri)
        path = sqlite_file(self.catalog_uri) if url.get_backend_name() == "sqlite" else None
        if path is None:
            return
        missing = StoreNotFoundError(
            f"{self.describe()} holds no lineage store (no catalog in {path.name}): is it the right folder?",
            path=self.describe(),
        )
        if not path.is_file():
            raise missing
        try:
            # read-write, never create: a writer killed mid-commit leaves a hot journal that only a
            # writable connection may roll back (read-only, SQLite refuses and the store looked absent)
            con = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=rw", uri=True)
            try:
                found = con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'iceberg_tables'")
                is_catalog = found.fetchone() is not None
            finally:
                con.close()
        except sqlite3.DatabaseError:  # not a database at all (a stray file), or unreadable
            raise missing from None
        if not is_catalog:
            raise missing

    def s3_properties(self) -> dict[str, str]:
        """The FileIO properties pyiceberg needs for an S3 warehouse (none for a local one)."""
        if not self.on_s3:
            return {}
        props = {"s3.region": self.s3_region, "s3.path-style-access": "true"}
        if self.s3_endpoint:
            props["s3.endpoint"] = self.s3_endpoint
        if self.s3_access_key_id and self.s3_secret_access_key:
            props["s3.access-key-id"] = self.s3_access_key_id
            props["s3.secret-access-key"] = self.s3_secret_access_key
        return props

    def filesystem(self) -> pafs.FileSystem:
        """A pyarrow filesystem that reads the table's files (paths given without their scheme)."""
        import pyarrow.fs as pafs

        if not self.on_s3:
            return pafs.LocalFileSystem()
        endpoint = self.s3_endpoint or ""
        scheme = "http" if endpoint.startswith("http://") else "https"
        return pafs.S3FileSystem(
            access_key=self.s3_access_key_id,
            secret_key=self.s3_secret_access_key,
            region=self.s3_region,
            endpoint_override=endpoint.split("://", 1)[-1] or None,
            scheme=scheme,
            # a dead object store must fail in seconds, not after the SDK's long retries
            connect_timeout=5,
            request_timeout=30,
        )

    def identifier(self, name: str = EVENTS) -> tuple[str, str]:
        """A table's identifier in the catalog (default: the events table)."""
        return (self.namespace, name)

    def load(self, *, create: bool = False) -> Table:
        """The events table; with ``create`` (a writer's open), made when missing, and brought to this layout.

        A table made before the provenance columns gets them added (null in the rows it holds);
        a reader's open changes nothing: it reads the files with ``COLUMNS``, absent ones as null.
        """
        from lineage.store.tables import events_schema, events_sort_order  # pyarrow: not for a reader of files

        table = self.load_table(EVENTS, events_schema(), events_sort_order(), TABLE_PROPERTIES, create=create)
        return self._with_provenance(table) if create else table

    def _with_provenance(self, table: Table) -> Table:
        """``table`` with the ``PROVENANCE`` columns, added in one schema commit if it lacks any."""
        from pyiceberg.exceptions import CommitFailedException
        from pyiceberg.types import StringType

        for _ in range(_CREATION_TRIES):
            have = {f.name for f in table.schema().fields}
            missing = [name for name in PROVENANCE if name not in have]
            if not missing:
                return table
            try:
                with table.update_schema() as update:
                    for name in missing:
                        update.add_column(name, StringType(), doc="how the event reached Kafka (its headers)")
            except CommitFailedException:  # another writer evolved it first: look again
                pass
            except Exception as exc:  # noqa: BLE001
                raise store_error(exc, self, "adding the provenance columns") from None
            table = table.refresh()
        raise StoreConflictError(
            f"adding the provenance columns to {self.describe()} lost to other writers", path=self.describe()
        )

    def load_table(
        self,
        name: str,
        schema: Schema,
        sort_order: SortOrder,
        properties: dict[str, str],
        *,
        create: bool = False,
        partition_spec: PartitionSpec | None = None,
    ) -> Table:
        """The table ``name`` of the namespace; with ``create``, made (and the namespace) when missing."""
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
        from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC

        from lineage.store.claim import check_claim

        catalog = self.catalog(create=create)
        for attempt in range(_CREATION_TRIES):
            try:
                if create:
                    # looked up first: pyiceberg's create_table_if_not_exists writes a new table's
                    # metadata file before it finds the table exists, leaving it behind unreferenced
                    # (one per holdings refresh, ~0.5 s of its time)
                    try:
                        table = catalog.load_table(self.identifier(name))
                    except (NoSuchTableError, NoSuchNamespaceError):
                        pass
                    else:
                        self.refuse_foreign(name, table.metadata_location, table.location())
                        check_claim(self, catalog)  # a writer: only the warehouse's own catalog
                        return table
                    check_claim(self, catalog)  # before the new table's first file lands in the warehouse
                    catalog.create_namespace_if_not_exists(self.namespace)
                    table = catalog.create_table_if_not_exists(
                        self.identifier(name),
                        schema=schema,
                        sort_order=sort_order,
                        properties=properties,
                        partition_spec=UNPARTITIONED_PARTITION_SPEC if partition_spec is None else partition_spec,
                    )
                    check_claim(self, catalog)  # the store's first table: its warehouse is claimed now
                    return table
                table = catalog.load_table(self.identifier(name))
                self.refuse_foreign(name, table.metadata_location, table.location())
                return table
            except (NoSuchTableError, NoSuchNamespaceError):
                raise StoreNotFoundError(
                    f"{self.describe()} has no {self.namespace}.{name} table: nothing has been stored there",
                    path=self.describe(),
                ) from None
            except Exception as exc:  # noqa: BLE001
                if not (create and _lost_creation_race(exc) and attempt + 1 < _CREATION_TRIES):
                    raise store_error(exc, self, f"opening the {name} table") from None
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")


# Two consumers starting on a new store both create the catalog's tables, the namespace and the
# events table. pyiceberg checks before it creates, and the loser of that race gets the database's
# own error ("table iceberg_tables already exists"; a UNIQUE violation on the namespace row), which
# the *_if_not_exists calls do not catch. A try again finds what the winner made.
_CREATION_TRIES = 5


def _lost_creation_race(exc: BaseException) -> bool:
    """Whether ``exc`` is the catalog database refusing to create what another process just created."""
    import sqlalchemy.exc

    if isinstance(exc, sqlalchemy.exc.IntegrityError):
        return True
    return isinstance(exc, sqlalchemy.exc.DBAPIError) and "already exists" in str(exc).lower()


def sqlite_file(catalog_uri: str) -> Path | None:
    """The file an SQLite catalog URL opens; None for an in-memory database.

    An SQLite URI filename (``sqlite:///file:/p/catalog.db?uri=true``) names its file after ``file:``;
    without ``uri=true`` SQLite reads ``file:...`` as a plain name.
    """
    from sqlalchemy.engine import make_url

    url = make_url(catalog_uri)
    database = url.database
    if not database or database == ":memory:" or url.query.get("mode") == "memory":
        return None
    if str(url.query.get("uri", "")).lower() in ("true", "1") and database.startswith("file:"):
        named = unquote(urlsplit(database).path)
        return None if named in ("", ":memory:") else Path(named)
    return Path(database)


def as_location(store: Path | StoreLocation) -> StoreLocation:
    """A folder means the embedded store in it."""
    return store if isinstance(store, StoreLocation) else StoreLocation.embedded(store)


_UNREACHABLE = ("curl", "connect", "timed out", "timeout", "could not resolve", "network")
# S3's refusals as the AWS SDK words them ("AWS Error ACCESS_DENIED", "SignatureDoesNotMatch"), compared
# with spaces and underscores removed
_REFUSED = ("accessdenied", "invalidaccesskeyid", "signaturedoesnotmatch", "forbidden")


def _refused(lowered: str) -> bool:
    squashed = re.sub(r"[\s_]", "", lowered)
    return any(m in squashed for m in _REFUSED)


def _keys_refused(doing: str, where: str) -> StoreAccessError:
    return StoreAccessError(
        f"{doing}: the object store refused our keys: check s3_access_key_id and s3_secret_access_key "
        "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)",
        path=where,
    )


def store_error(exc: BaseException, location: StoreLocation, doing: str) -> StoreError:
    """One plain line for a failure of the catalog, the object store or the disk (no secret, no traceback)."""
    import sqlalchemy.exc

    where = location.describe()
    if isinstance(exc, StoreError):
        return exc
    text = str(exc)
    lowered = text.lower()
    # SQLite's own error: the catalog file read without SQLAlchemy (``StoreLocation.versions``)
    if isinstance(exc, sqlalchemy.exc.OperationalError | sqlite3.OperationalError):
        if "password authentication failed" in lowered or "authentication failed" in lowered:
            return StoreAccessError(
                f"{doing}: the catalog refused the login: check catalog_password (LINEAGE_CATALOG_PASSWORD)",
                path=where,
            )
        if "database or disk is full" in lowered:  # SQLite's ENOSPC
            return StoreUnavailableError(f"{doing}: the disk of {where} is full", path=where)
        if "database is locked" in lowered:
            return StoreUnavailableError(f"{doing}: the catalog file of {where} stayed locked", path=where)
        if "does not exist" in lowered and "database" in lowered:
            return StoreNotFoundError(f"{doing}: the catalog database of {where} does not exist", path=where)
        if "unable to open database file" in lowered:
            return StoreNotFoundError(f"{doing}: cannot open the catalog file of {where}", path=where)
        return StoreUnavailableError(f"{doing}: the catalog of {where} did not answer", path=where)
    if isinstance(exc, sqlalchemy.exc.SQLAlchemyError):
        return StoreUnavailableError(f"{doing}: the catalog of {where} failed ({type(exc).__name__})", path=where)
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC or "no space left" in lowered:
            return StoreUnavailableError(f"{doing}: the disk of {where} is full", path=where)
        if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM):
            return StoreAccessError(f"{doing}: permission denied in {where}", path=where)
        if isinstance(exc, FileNotFoundError) or exc.errno == errno.ENOENT:
            return StoreCorruptError(f"{doing}: a file of {where} is missing ({_file_of(exc)})", path=where)
        if _refused(lowered):
            return _keys_refused(doing, where)
        if "curl" in lowered or "connect" in lowered or "timed out" in lowered or "timeout" in lowered:
            return StoreUnavailableError(f"{doing}: the object store of {where} did not answer", path=where)
        if "parquet" in lowered or "magic" in lowered or "corrupt" in lowered:
            return StoreCorruptError(f"{doing}: a data file of {where} is corrupt", path=where)
        return StoreUnavailableError(f"{doing}: {where}: {_oneline(text)}", path=where)
    if "parquet" in lowered or "magic bytes" in lowered or "avro" in lowered or "corrupt" in lowered:
        return StoreCorruptError(f"{doing}: a file of {where} is corrupt ({type(exc).__name__})", path=where)
    return StoreError(f"{doing}: {where}: {type(exc).__name__}: {_oneline(text)}", path=where)


def read_error(exc: BaseException, location: StoreLocation, doing: str) -> StoreError:
    """One plain line for a failure reading the table's data files (DuckDB's or pyarrow's error).

    The object store being down or refusing our keys is said so; anything else a data file gives
    (bad magic bytes, a footer or page that does not decode, a file gone) is ``StoreCorruptError``
    naming the file, never the library's text.
    """
    if isinstance(exc, StoreError):
        return exc
    where = location.describe()
    text = str(exc)
    lowered = text.lower()
    if location.on_s3 and _refused(lowered):
        return _keys_refused(doing, where)
    if isinstance(exc, PermissionError):
        return StoreAccessError(f"{doing}: permission denied in {where}", path=where)
    if location.on_s3 and any(m in lowered for m in _UNREACHABLE):
        return StoreUnavailableError(f"{doing}: the object store of {where} did not answer", path=where)
    found = re.search(r"([\w.-]+\.parquet)", text)
    name = found.group(1) if found else "a data file"
    gone = isinstance(exc, FileNotFoundError) or any(
        m in lowered for m in ("no such file", "does not exist", "no files found")
    )
    if gone:  # a forget, retain or compact ending a snapshot deletes the files only it named, read or not
        return StoreCorruptError(
            f"{doing}: {name} of {where} is missing: ask again if a forget, retain or compact ran meanwhile "
            "(they remove the files of older reads); else restore it from a backup",
            path=where,
        )
    return StoreCorruptError(
        f"{doing}: {name} of {where} is corrupt (it cannot be decoded): restore it from a backup", path=where
    )


def _file_of(exc: OSError) -> str:
    return os.path.basename(str(exc.filename)) if exc.filename else "unknown file"


def _oneline(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:200]


def raise_store_error(exc: BaseException, location: StoreLocation, doing: str) -> NoReturn:
    """Raise ``store_error(...)`` without chaining the library's traceback into what a user sees."""
    raise store_error(exc, location, doing) from None
