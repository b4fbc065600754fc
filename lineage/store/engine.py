"""The lineage store as DuckDB sees it: an ``events`` view over one Iceberg snapshot. The only duckdb module.

A reader pins one snapshot of the events table (the current one, or a past one named by id or tag),
asks pyiceberg for that snapshot's data files, and hands DuckDB a pyarrow dataset of exactly those
files. So a reader sees only committed data, an answer reads one consistent state however many
queries it runs, and any number of readers run on any host while consumers commit. Not
``read_parquet``: DuckDB expands glob characters in every path it is given, even in an explicit
list (a store at ``/data/store[1]`` read its sibling ``/data/store1``), and DuckDB here cannot
download its Iceberg extension.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from lineage.contract.taxonomy import Taxonomy
from lineage.errors import ConfigurationError, StoreError, StoreNotFoundError
from lineage.resources import shipped_dir
from lineage.store.catalog import StoreLocation, as_location, read_error
from lineage.store.maintenance import CompactionReport, compact
from lineage.store.snapshots import SnapshotRef, pinned_files
from lineage.store.tables import COLUMNS

__all__ = ["CompactionReport", "QueryName", "Session", "Store", "queries_dir", "query_text"]

# the files of queries/, by name: mypy checks every call names one (a test checks each has its file)
QueryName = Literal[
    "access_events",
    "access_holdings",
    "access_recipients",
    "breach_impact",
    "erasure_plan",
    "flow_edges",
    "holders",
    "links_from",
    "links_to",
    "map_events",
    "map_flows",
    "policy_consent",
    "policy_events",
    "policy_retention",
    "retention",
    "subject_holdings",
    "transfers",
]

log = logging.getLogger(__name__)


def queries_dir() -> Path:
    """The folder of ``.sql`` files."""
    return shipped_dir("queries")


@cache
def query_text(name: QueryName | Literal["_macros"]) -> str:
    """The SQL of ``queries/<name>.sql`` (read once per process)."""
    path = queries_dir() / f"{name}.sql"
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError("queries", f"no query {name!r} at {path}") from exc


class Session:
    """Queries over one connection to the store."""

    def __init__(self, con: duckdb.DuckDBPyConnection, location: StoreLocation, files: list[str]) -> None:
        """Wrap an open connection to ``files`` of the store at ``location`` (``Store.session`` makes one)."""
        self._con = con
        self._location = location
        self._files = files

    def rows(self, query: QueryName, params: list[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run ``queries/<query>.sql`` with bound parameters; rows as dicts."""
        return _rows(self._con, query_text(query), params, self._location, self._files)

    def execute(self, query: QueryName, params: list[Any] | dict[str, Any] | None = None) -> None:
        """Run ``queries/<query>.sql`` for its effect (a temporary table the next queries read)."""
        try:
            self._con.execute(query_text(query), params or [])
        except duckdb.Error as exc:
            _raise_data_file_error(exc, self._location, self._files)
            raise StoreError(f"query {query} failed: {exc}", query=query) from exc


def _rows(
    con: duckdb.DuckDBPyConnection,
    text: str,
    params: list[Any] | dict[str, Any] | None,
    location: StoreLocation,
    files: list[str],
) -> list[dict[str, Any]]:
    try:
        # through Arrow: DuckDB's own row conversion of TIMESTAMPTZ needs pytz
        rows: list[dict[str, Any]] = con.sql(text, params=params or []).to_arrow_table().to_pylist()
    except duckdb.Error as exc:
        _raise_data_file_error(exc, location, files)
        raise StoreError(f"query failed: {exc}") from exc
    return rows


def _raise_data_file_error(exc: duckdb.Error, location: StoreLocation, files: list[str]) -> None:
    """A query that failed while reading the data files (not a bug in the SQL) fails as the file's fault.

    DuckDB's Parquet reader does not always say so, nor name the file it could not decode; so on
    this failing path each file is checked (footer, then pages) to find the culprit. A query that
    fails with every file sound is the query's fault, and returns.
    """
    text = str(exc)
    if "'events_files'" in text or (location.on_s3 and isinstance(exc, duckdb.IOException)):
        raise read_error(exc, location, "reading the data files") from None
    if location.on_s3:
        return
    culprit = _unreadable(files)
    if culprit is not None:
        name = os.path.basename(culprit)
        failure = ValueError(f"{name}: unreadable") if os.path.exists(culprit) else FileNotFoundError(name)
        raise read_error(failure, location, "reading the data files") from None
    if ".parquet" in text and isinstance(exc, (duckdb.IOException, duckdb.InvalidInputException)):
        raise read_error(exc, location, "reading the data files") from None


def _unreadable(files: list[str]) -> str | None:
    """The first local data file that is missing or does not decode, if any."""
    for check in (pq.read_metadata, pq.read_table):
        for path in files:
            try:
                check(path)
            except Exception:  # noqa: BLE001 - any failure here is the culprit's
                return path
    return None


_GLOB = frozenset("*?[]{}")


def _literal_glob(path: str) -> str:
    """``path`` as a DuckDB glob matching only itself: each glob character becomes a class of one."""
    return "".join(f"[{c}]" if c in _GLOB else c for c in path)


class Store:
    """The events table at one location, read through DuckDB by any number of processes."""

    def __init__(self, store: Path | StoreLocation, *, snapshot: SnapshotRef = None) -> None:
        """Point at a store (a folder means the embedded one in it); ``snapshot`` pins a past state."""
        self.location = as_location(store)
        self.root = self.location.root or Path(self.location.warehouse)
        self.snapshot = snapshot
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int | None, int], duckdb.DuckDBPyConnection] | None = None
        self.snapshot_id: int | None = None
        """The snapshot the last connection read (None: the table held nothing yet)."""

    def holds_events(self) -> bool:
        """Whether a consumer has committed to the store (its table exists and has a snapshot)."""
        try:
            return self.location.load().current_snapshot() is not None
        except StoreNotFoundError:
            return False

    def connect(self, taxonomy: Taxonomy | None = None) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with an ``events`` view over the pinned snapshot's files.

        With ``taxonomy``, also tables ``regions(code, zone)`` and ``sensitive_categories(key)``
        for the answers that need them. A store with no table is ``StoreNotFoundError``.
        """
        snapshot_id, files, rows = pinned_files(self.location, self.snapshot)
        return self._connect(snapshot_id, files, rows, taxonomy)

    def _connect(
        self, snapshot_id: int | None, files: list[str], rows: list[int], taxonomy: Taxonomy | None
    ) -> duckdb.DuckDBPyConnection:
        self.snapshot_id = snapshot_id
        if not self.location.on_s3:
            self._check_footers(files, rows)
        try:
            con = duckdb.connect(":memory:")
            con.execute("SET TimeZone = 'UTC'")
            self._events_view(con, files)
            con.execute(query_text("_macros"))
            if taxonomy is not None:
                con.execute("CREATE TABLE regions (code VARCHAR, zone VARCHAR)")
                con.executemany(
                    "INSERT INTO regions VALUES (?, ?)", [(r.key, r.zone) for r in taxonomy.regions.values()]
                )
                con.execute("CREATE TABLE sensitive_categories (key VARCHAR)")
                sensitive = [(c.key,) for c in taxonomy.categories.values() if c.sensitive]
                con.executemany("INSERT INTO sensitive_categories VALUES (?)", sensitive)
        except duckdb.Error as exc:
            _raise_data_file_error(exc, self.location, files)
            raise StoreError(f"cannot open {self.location.describe()}: {exc}", path=self.root) from exc
        except Exception as exc:  # noqa: BLE001 - pyarrow's errors about the files become one line
            raise read_error(exc, self.location, "opening the data files") from None
        return con

    def _check_footers(self, files: list[str], rows: list[int]) -> None:
        """Each local file's footer must count the rows the table's manifest says it holds.

        A damaged footer can read as an empty file rather than fail, and an answer would then miss
        people without a word; reading the footers (~0.1 ms each, once per snapshot a process opens)
        turns that into an error naming the file.
        """
        for path, expected in zip(files, rows, strict=True):
            try:
                found = pq.read_metadata(path).num_rows
            except FileNotFoundError:
                raise read_error(
                    FileNotFoundError(f"{os.path.basename(path)}: missing"), self.location, "opening the data files"
                ) from None
            except Exception:  # noqa: BLE001 - whatever pyarrow says, the file does not decode
                found = -1
            if found != expected:
                culprit = ValueError(f"{os.path.basename(path)}: unreadable")
                raise read_error(culprit, self.location, "opening the data files") from None

    def _events_view(self, con: duckdb.DuckDBPyConnection, files: list[str]) -> None:
        """The ``events`` view over exactly ``files``.

        Local files go to DuckDB's own Parquet reader (parallel, with row-group pruning: an access
        lookup ran ~10x faster than through Arrow), each path's glob characters escaped as one-character
        classes, since DuckDB expands globs even in a list of paths. S3 files go through a pyarrow
        dataset: DuckDB here cannot download the extension it would need to read s3:// itself.
        """
        if not files:
            con.from_arrow(COLUMNS.empty_table()).create_view("events")
        elif self.location.on_s3 or any("\\" in f for f in files):
            dataset = pads.dataset(files, schema=COLUMNS, format="parquet", filesystem=self.location.filesystem())
            con.register("events_files", dataset)
            con.execute("CREATE VIEW events AS SELECT * FROM events_files")
        else:
            # a relation, not SQL text: a view over read_parquet($files) cannot be prepared
            con.read_parquet([_literal_glob(f) for f in files]).create_view("events")

    @contextmanager
    def session(self, taxonomy: Taxonomy | None = None) -> Iterator[Session]:
        """Several queries on one connection, kept for the next session while the snapshot is unchanged.

        Opening a connection plans the snapshot's files and loads the macros; a process answering
        many requests pays it once per new snapshot. Sessions of one ``Store`` run one at a time
        (a DuckDB connection is not shared between threads).
        """
        with self._lock:
            snapshot_id, files, rows = pinned_files(self.location, self.snapshot)
            key = (snapshot_id, id(taxonomy))
            if self._cached is None or self._cached[0] != key:
                self.close()
                self._cached = (key, self._connect(snapshot_id, files, rows, taxonomy))
            self.snapshot_id = snapshot_id
            yield Session(self._cached[1], self.location, files)

    def close(self) -> None:
        """Close the connection kept by ``session``."""
        if self._cached is not None:
            self._cached[1].close()
            self._cached = None

    def rows(
        self, query: QueryName, params: list[Any] | dict[str, Any] | None = None, taxonomy: Taxonomy | None = None
    ) -> list[dict[str, Any]]:
        """Run a query from ``queries/`` (by file name, without .sql) with bound parameters; rows as dicts."""
        return self.sql(query_text(query), params, taxonomy)

    def sql(
        self, text: str, params: list[Any] | dict[str, Any] | None = None, taxonomy: Taxonomy | None = None
    ) -> list[dict[str, Any]]:
        """Run SQL with bound parameters over a fresh view of the store; rows as dicts."""
        snapshot_id, files, rows = pinned_files(self.location, self.snapshot)
        with self._connect(snapshot_id, files, rows, taxonomy) as con:
            return _rows(con, text, params, self.location, files)

    def count(self) -> int:
        """How many events the store holds."""
        return int(self.sql("SELECT count(*) AS n FROM events")[0]["n"])

    def event_ids(self) -> list[str]:
        """Every stored event id, duplicates included (for exactness checks)."""
        return [r["event_id"] for r in self.sql("SELECT event_id FROM events")]

    def compact(self, **options: Any) -> CompactionReport:
        """Rewrite small files sorted by subject, expire old snapshots, remove unreferenced files."""
        return compact(self.location, **options)
