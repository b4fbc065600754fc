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

import dataclasses
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from types import EllipsisType, MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import duckdb

from lineage.contract.taxonomy import Taxonomy
from lineage.errors import ConfigurationError, StoreError, StoreNotFoundError
from lineage.holdings import Event, HoldingsEngine
from lineage.process import paused_gc
from lineage.resources import shipped_dir
from lineage.store import plans
from lineage.store.catalog import StoreLocation, as_location, read_error
from lineage.store.file_bounds import (
    FileBounds,
    SourceOffsets,
    bounds_of,
    files_admitting,
    files_after,
    files_with_nulls,
)
from lineage.store.layout import (
    ERASURES,
    EVENT_FIELDS,
    EVENTS,
    FLOWS_BUCKET,
    HOLDING_FIELDS,
    HOLDINGS,
    IDENTITY_BUCKET,
    KINDS,
    buckets_of,
)
from lineage.store.person_holdings import FLOW_COLUMNS, RESET_COLUMNS, RUN_COLUMNS, expand
from lineage.store.plans import Pinned, Versions
from lineage.store.point_read import NotPointReadable, PointReader

if TYPE_CHECKING:
    # pyarrow (~60 ms to import, with numpy) only where Arrow is read or built, or a footer checked
    import pyarrow as pa
    import pyarrow.parquet as pq

    # pyiceberg comes in with the planning of a snapshot's files (``holdings.pinned_state``), only
    # when no pin is kept for the catalog's state (``lineage.store.plans``): see ``Store._pin_locked``
    from pyiceberg.catalog.sql import SqlCatalog

    from lineage.store.certificate import Certificate, CertificateIndex
    from lineage.store.maintenance import CompactionReport
    from lineage.store.snapshots import SnapshotRef

__all__ = ["QueryName", "Scan", "Session", "Store", "queries_dir", "query_text"]

# the files of queries/, by name: mypy checks every call names one (a test checks each has its file)
QueryName = Literal[
    "access_sources",
    "breach_impact",
    "flow_edges",
    "future_events",
    "holders",
    "event_file_offsets",
    "holdings_events",
    "holdings_holdback",
    "map_events",
    "map_flows",
    "person_links",
    "person_of",
    "policy_consent",
    "policy_events",
    "policy_retention",
    "retention",
    "ropa",
    "subject_events",
    "subject_holdings",
    "transfers",
]

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Offsets = dict[str, dict[int, int]]  # an offset of each source partition: {origin: {partition: offset}}


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


@dataclass(frozen=True, slots=True)
class Bounds:
    """What the footers of a snapshot's local files say each holds (None: not known, as on S3)."""

    events: list[FileBounds] | None = None
    holdings: list[FileBounds] | None = None
    resets: tuple[str, ...] = ()  # the holdings files of the resets (``holding_resets`` reads these alone)


class Footers:
    """The local data files whose footers are still to check against the row counts the manifests give.

    A damaged footer can read as an empty file rather than fail, and an answer would then miss
    people without a word: each footer read (~1 ms) turns that into an error naming the file. A
    person's lookup reads a few of a snapshot's files, so when the manifests gave the bounds each
    file is checked before the first query that reads it, not all of them at open (60-70 ms at
    1M subjects, 66 files). Shared by the sessions of one connection; checking twice is harmless.
    pyarrow reads them, not DuckDB: DuckDB's ``parquet_file_metadata`` skips parts of a footer that
    pyarrow decodes (its Arrow schema, some schema nodes), and passed a footer every full read
    called corrupt (found by a review). The ~60 ms of importing pyarrow is the price.
    """

    def __init__(self, location: StoreLocation, expected: Mapping[str, int], always: tuple[str, ...] = ()) -> None:
        """``expected``: each file still to check, and its rows; ``always``: files every query reads."""
        self._location = location
        self._expected = dict(expected)
        self._always = always
        self._lock = threading.Lock()
        self._read: dict[str, pq.FileMetaData] = {}  # the footers ``check`` read, for ``metadata``

    def check(self, files: list[str] | None, *, keep: bool = False) -> None:
        """Check ``files`` (None: every file) and the ``always`` ones, if not checked yet.

        ``keep``: keep the footers read for ``metadata`` (a point read's, not every lookup's: a
        snapshot's 66 footers at 1M subjects are ~7 MB of Thrift).
        """
        if not self._expected:
            return
        with self._lock:  # a session on another thread waits for the check its query needs too
            asked = self._expected if files is None else {*files, *self._always}
            todo = [f for f in asked if f in self._expected]
            if todo:
                for path, meta in zip(todo, self.read(todo, [self._expected[f] for f in todo]), strict=True):
                    del self._expected[path]
                    if keep:
                        self._read[path] = meta

    def metadata(self, path: str) -> pq.FileMetaData | None:
        """The footer of ``path`` if ``check`` read it (a point read then parses it no second time)."""
        with self._lock:
            return self._read.get(path)

    def read(self, files: list[str], rows: list[int]) -> list[pq.FileMetaData]:
        """Each file's footer, which must count the rows the table's manifest says it holds."""
        import pyarrow.parquet as pq

        footers: list[pq.FileMetaData] = []
        for path, expected in zip(files, rows, strict=True):
            try:
                meta = pq.read_metadata(path)
                found = meta.num_rows
                footers.append(meta)
            except FileNotFoundError:
                raise read_error(
                    FileNotFoundError(f"{os.path.basename(path)}: missing"), self._location, "opening the data files"
                ) from None
            except Exception:  # noqa: BLE001 - whatever pyarrow says, the file does not decode
                found = -1
            if found != expected:
                culprit = ValueError(f"{os.path.basename(path)}: unreadable")
                raise read_error(culprit, self._location, "opening the data files") from None
        return footers


class Session:
    """Queries over one connection to the store."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        location: StoreLocation,
        files: list[str],
        bounds: Bounds | None = None,
        footers: Footers | None = None,
        points: PointReader | None = None,
    ) -> None:
        """Wrap an open connection to ``files`` of the store at ``location`` (``Store.session`` makes one).

        ``bounds``: what the files hold, for ``event_files_of`` and ``holdings_files_of``;
        ``footers``: those still to check before a query reads them (None: all checked);
        ``points``: reads the identity lookups straight from the files (None: DuckDB's queries do).
        """
        self._con = con
        self._location = location
        self._files = files
        self._bounds = bounds or Bounds()
        self._footers = footers
        self._points = points

    def event_files_of(self, subjects: list[str]) -> list[str] | None:
        """The event files that may hold events of ``subjects`` (None: unknown, read every file).

        Bound as ``$files`` of a lookup query (subject_events.sql), it reads those files alone.
        """
        if self._bounds.events is None:
            return None
        return files_admitting(self._bounds.events, subject_id=subjects)

    def bulk_event_files(self) -> list[str] | None:
        """The event files that may hold bulk events (no subject; None: unknown, read every file).

        Bound as ``$files`` of access_sources.sql, which looks up the bulk events a person's data came by.
        """
        if self._bounds.events is None:
            return None
        return files_with_nulls(self._bounds.events, "subject_id")

    def holdings_files_of(self, subjects: list[str]) -> list[str] | None:
        """The holdings files that may hold the runs of ``subjects``, and the bulk flows' (None: read every file).

        Bound as ``$files`` of subject_holdings.sql (the runs and the flows they expand over).
        """
        if self._bounds.holdings is None:
            return None
        runs = files_admitting(self._bounds.holdings, subject=subjects, bucket=buckets_of(subjects))
        flows = files_admitting(self._bounds.holdings, bucket=[FLOWS_BUCKET])
        return sorted(set(runs) | set(flows))

    def identity_files_of(self, keys: list[str]) -> list[str] | None:
        """The holdings files that may hold the person keys or links of ``keys`` (None: read every file).

        Bound as ``$files`` of person_of.sql and person_links.sql.
        """
        if self._bounds.holdings is None:
            return None
        return files_admitting(self._bounds.holdings, subject=keys, bucket=[IDENTITY_BUCKET])

    def person_of(self, identifier: str) -> str | None:
        """The person key of ``identifier`` (None: it is linked to no other), as ``queries/person_of.sql`` finds it.

        From the stored holdings' local files, read by ``PointReader`` (half DuckDB's time); else the query.
        """
        files = self.identity_files_of([identifier])
        if files is None or self._points is None:
            found = self.lookup("person_of", {"id": identifier, "files": files})
            return str(found[0]["person"]) if found else None
        try:
            rows = self._point_rows(files, {"subject": identifier, "kind": "person"}, ["other"])
        except NotPointReadable:
            found = self.lookup("person_of", {"id": identifier, "files": files})
            return str(found[0]["person"]) if found else None
        return str(rows[0]["other"]) if rows else None

    def person_links(self, person: str) -> list[dict[str, Any]]:
        """The links among the identifiers of ``person`` (a person key): ``queries/person_links.sql``'s rows.

        Each has ``a``, ``b`` and ``declared_at``; read as ``person_of`` reads.
        """
        files = self.identity_files_of([person])
        if files is None or self._points is None:
            return self.lookup("person_links", {"person": person, "files": files})
        try:
            rows = self._point_rows(files, {"subject": person, "kind": "link"}, ["via", "other", "arrived_at"])
        except NotPointReadable:
            return self.lookup("person_links", {"person": person, "files": files})
        return [{"a": r["via"], "b": r["other"], "declared_at": r["arrived_at"]} for r in rows]

    def subject_holdings(self, ids: list[str], as_of: datetime) -> list[dict[str, Any]]:
        """The holdings of ``ids`` (one person's identifiers) up to ``as_of``: ``subject_holdings.sql``'s rows.

        From the local files whose bounds are known, the person's runs, resets and flows are read by
        row group and expanded in Python (``person_holdings``: 7 against 12 ms at 1M subjects); else the query.
        """
        files = self.holdings_files_of(ids)
        params = {"ids": ids, "as_of": as_of, "buckets": buckets_of(ids), "files": files}
        if files is None or self._points is None or as_of is None:
            return self.lookup("subject_holdings", params)
        if as_of.tzinfo is None:  # as DuckDB reads it, its time zone being UTC
            as_of = as_of.replace(tzinfo=UTC)
        subjects = list(dict.fromkeys(ids))
        try:
            runs = [r for s in subjects for r in self._point_rows(files, {"subject": s, "kind": "run"}, RUN_COLUMNS)]
            resets = {
                s: [r["gen"] for r in self._point_rows(list(self._bounds.resets), {"subject": s}, RESET_COLUMNS)]
                for s in subjects
            } if self._bounds.resets else {}  # fmt: skip
            flows = {
                flow: self._point_rows(files, {"flow": flow, "kind": "flow"}, FLOW_COLUMNS)
                for flow in {r["flow"] for r in runs if r["flow"] is not None and r["first_seq"] is not None}
            }
            return expand(runs, resets, flows, as_of, set(buckets_of(subjects)))
        except (NotPointReadable, OverflowError):
            # a file of another layout or writer (a column missing, a time past 9999), or a retention
            # ending before year 1 (a foreign writer's negative days): the query's word on them
            return self.lookup("subject_holdings", params)

    def _point_rows(self, files: list[str], equal: dict[str, Any], columns: list[str]) -> list[dict[str, Any]]:
        """The ``columns`` of the rows of ``files`` matching ``equal`` (``PointReader``), the footers checked first."""
        assert self._points is not None
        footers = self._footers
        if footers is not None:
            footers.check(files, keep=True)
        known = footers.metadata if footers is not None else (lambda path: None)
        return self._points.rows(files, equal, columns, known)

    def rows(self, query: QueryName, params: list[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run ``queries/<query>.sql`` with bound parameters; rows as dicts."""
        if self._footers is not None:
            self._footers.check(None)
        return _rows(self._con, query_text(query), params, self._location, self._files)

    def lookup(self, query: QueryName, params: list[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """``rows`` for a query of a few rows (one person's): the same dicts, fetched without Arrow.

        ``rows`` goes through Arrow, for which DuckDB binds and plans a relation before running the
        query: 3-4 ms a query whatever its rows, a tenth of a person page (1M subjects). Fetched as
        Python values, a person's tens of rows cost well under a millisecond. For many rows Arrow
        is the faster (250,000 holdings rows: 1.0 s against 1.7-1.9 s), so only lookups come here.
        A lookup binding ``$files`` reads those alone: only their footers are checked first.
        """
        if self._footers is not None:
            files = params.get("files") if isinstance(params, dict) else None
            self._footers.check(files)
        try:
            cursor = self._con.execute(query_text(query), params or [])
            found = cursor.fetchall()
        except duckdb.Error as exc:
            _raise_data_file_error(exc, self._location, self._files)
            raise StoreError(f"query {query} failed: {exc}", query=query) from exc
        names = [d[0] for d in cursor.description or ()]
        zoned = [i for i, d in enumerate(cursor.description or ()) if str(d[1]) == "TIMESTAMP WITH TIME ZONE"]
        if not zoned:
            return [dict(zip(names, values, strict=True)) for values in found]
        out = []
        for values in found:
            row = dict(zip(names, values, strict=True))
            for i in zoned:  # as ``rows`` gives them: datetime.UTC, not DuckDB's ZoneInfo('UTC')
                if (value := values[i]) is not None:
                    row[names[i]] = value.astimezone(UTC)
            out.append(row)
        return out


def _rows(
    con: duckdb.DuckDBPyConnection,
    text: str,
    params: list[Any] | dict[str, Any] | None,
    location: StoreLocation,
    files: list[str],
) -> list[dict[str, Any]]:
    try:
        # through Arrow: DuckDB's own row conversion of TIMESTAMPTZ needs pytz
        table = con.sql(text, params=params or []).to_arrow_table()
    except duckdb.Error as exc:
        _raise_data_file_error(exc, location, files)
        raise StoreError(f"query failed: {exc}") from exc
    return _as_dicts(table)


def _as_dicts(table: Any) -> list[dict[str, Any]]:
    """Rows as dicts, built column by column with the garbage collector paused.

    A breach answer has hundreds of thousands of rows: pyarrow's per-row conversion of zoned times,
    and collections triggered by the millions of new objects, took most of its time (profiled:
    3.4 s of 5.7 s at 250,000 rows; 1.2 s this way).
    """
    import pyarrow as pa

    names = table.column_names
    columns = []
    for name in names:
        column = table.column(name)
        if pa.types.is_timestamp(column.type) and column.type.tz in ("UTC", "Etc/UTC", "+00:00"):
            micros = column.cast(pa.timestamp("us", tz=column.type.tz)).cast(pa.int64()).to_pylist()
            columns.append([None if v is None else _EPOCH + timedelta(microseconds=v) for v in micros])
        else:
            columns.append(column.to_pylist())
    with paused_gc():
        return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


_DATASET_READ = re.compile(r"'\w+_files'")


def _raise_data_file_error(exc: duckdb.Error, location: StoreLocation, files: list[str]) -> None:
    """A query that failed while reading the data files (not a bug in the SQL) fails as the file's fault.

    DuckDB's Parquet reader does not always say so, nor name the file it could not decode; so on
    this failing path each file is checked (footer, then pages) to find the culprit. A query that
    fails with every file sound is the query's fault, and returns.
    """
    text = str(exc)
    # a dataset registered for a view (events_files, holdings_all_files, holdings_base_files) failing
    # to read is a data file's fault
    if _DATASET_READ.search(text) or (location.on_s3 and isinstance(exc, duckdb.IOException)):
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
    import pyarrow.parquet as pq

    for check in (pq.read_metadata, pq.read_table):
        for path in files:
            try:
                check(path)
            except Exception:  # noqa: BLE001 - any failure here is the culprit's
                return path
    return None


_GLOB = frozenset("*?[]{}")
_BACKSLASH = "\\"  # local files whose paths have one are read through pyarrow, as on S3 (``_view``)


def _described(pinned: Pinned, versions: Versions) -> Pinned:
    """``pinned`` with its local files' bounds and layouts read from the manifests (unchanged if they cannot be).

    A process answering one question read every footer of the snapshot for them: 60-70 ms at 1M
    subjects / 20M events (66 files), a sixth of ``lineage access``. The manifests hold the same
    bounds (Iceberg truncates a string's to 16 characters, still bounds), read in ~10 ms.
    """
    from lineage.store.manifests import described

    where = dict(versions)
    if pinned.events_snapshot is None or pinned.base is not None or EVENTS not in where:
        return pinned
    events = described(where[EVENTS], pinned.events_snapshot, pinned.event_files, pinned.event_rows, ["subject_id"])
    if events is None:
        return pinned
    holdings = None
    if pinned.holdings_snapshot is not None:
        if HOLDINGS not in where:
            return pinned
        holdings = described(where[HOLDINGS], pinned.holdings_snapshot, pinned.holdings_files, pinned.holdings_rows,
                             ["subject", "bucket"])  # fmt: skip
        if holdings is None:
            return pinned
    return dataclasses.replace(
        pinned,
        event_bounds=events.bounds,
        holdings_bounds=None if holdings is None else holdings.bounds,
        mixed_layouts=events.mixed,
    )


def _named_as_given(files: list[str]) -> bool:
    """Whether DuckDB reports each of these local files' ``filename`` as the very path given, so ``$files`` matches.

    A path it reads through pyarrow (a backslash) has no ``data_file``; a path with glob characters is
    expanded, and DuckDB reports the match normalised (``a/../st[1]`` as ``st[1]``): for those the
    lookups read every file rather than match no path.
    """
    return not any(_BACKSLASH in f or not _GLOB.isdisjoint(f) for f in files)


_NO_CERTIFICATES: Mapping[str, Certificate] = MappingProxyType({})
#: DuckDB's column naming each row's file (shown as ``data_file``) when a file has one named ``filename``
_FILE_COLUMN = "lineage_data_file"
_NO_FILE = "*, CAST(NULL AS VARCHAR) AS data_file"  # rows read from no file of their own (Arrow, S3)
_NO_RESETS = (
    "CREATE VIEW holding_resets AS SELECT CAST(NULL AS VARCHAR) AS subject, CAST(NULL AS BIGINT) AS gen WHERE false"
)


def _renamed_file_column(
    con: duckdb.DuckDBPyConnection, globs: list[str], by_name: bool, table: str, location: StoreLocation
) -> duckdb.DuckDBPyRelation:
    """The files read with DuckDB's file column named ``_FILE_COLUMN`` (their paths a bound parameter)."""
    try:
        return con.sql(
            f"SELECT * FROM read_parquet($files, union_by_name = {'true' if by_name else 'false'}, "
            f"filename = '{_FILE_COLUMN}')",
            params={"files": globs},
        )
    except duckdb.BinderException as exc:
        if "Option filename" not in str(exc):
            raise
        raise StoreError(
            f"the {table} files of {location.describe()} have columns named both filename and {_FILE_COLUMN}, "
            "the names this reader gives the file a row came from: rename one of them",
            path=location.describe(),
        ) from None


def _dataset_view(
    location: StoreLocation,
    con: duckdb.DuckDBPyConnection,
    registered: dict[str, Any],
    view: tuple[str, list[str], Sequence[tuple[str, str]]],
    reflects: Offsets | None,
) -> None:
    """The view over files through a pyarrow dataset of the table's columns (``Store._view``).

    ``view``: its name, the files, the table's columns. One fragment per file, each naming its file
    as the constant column ``data_file``: a lookup's filter on it is pushed into the scan, and the
    files it leaves out are never opened.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pads  # imports pandas: ~0.3 s a local store's reader need not pay

    from lineage.store.tables import arrow_schema

    name, files, columns = view
    fmt, filesystem = pads.ParquetFileFormat(), location.filesystem()
    fragments = [fmt.make_fragment(f, filesystem, partition_expression=pc.field("data_file") == f) for f in files]
    schema = arrow_schema(columns).append(pa.field("data_file", pa.string()))
    dataset = pads.FileSystemDataset(fragments, schema, fmt, filesystem)
    con.register(f"{name}_files", dataset)
    registered[f"{name}_files"] = dataset
    _create_views(con, name, con.table(f"{name}_files"), reflects)


def _create_views(
    con: duckdb.DuckDBPyConnection, name: str, rows: duckdb.DuckDBPyRelation, reflects: Offsets | None = None
) -> None:
    """``{name}_by_file``: ``rows`` with the path of each row's file as ``data_file``; ``name``: without it.

    A lookup query filtered on ``data_file`` reads the files it lists alone: DuckDB leaves out the
    others before opening them (``lineage.store.file_bounds`` says which files a lookup needs).
    ``reflects``: only the rows of these source partitions at or below these offsets (the events the
    holdings reflect, when a maintainer's refresh held later ones back); None: every row.
    """
    if reflects is None:
        rows.create_view(f"{name}_by_file")
    else:
        rows.create_view(f"{name}_stored_by_file")
        con.execute(f"CREATE TABLE {name}_reflected (origin VARCHAR, kafka_partition INTEGER, last_offset BIGINT)")
        reflected = [(o, p, off) for o, parts in reflects.items() for p, off in parts.items()]
        if reflected:  # none: every event held back, the view is empty
            con.executemany(f"INSERT INTO {name}_reflected VALUES (?, ?, ?)", reflected)
        con.execute(
            f"CREATE VIEW {name}_by_file AS SELECT s.* FROM {name}_stored_by_file AS s "
            f"SEMI JOIN {name}_reflected AS r ON s.origin = r.origin AND s.kafka_partition = r.kafka_partition "
            "AND s.kafka_offset <= r.last_offset"
        )
    con.execute(f"CREATE VIEW {name} AS SELECT * EXCLUDE (data_file) FROM {name}_by_file")


def _empty(columns: Sequence[tuple[str, str]]) -> pa.Table:
    """An Arrow table of no rows with ``columns`` (``lineage.store.layout``)."""
    from lineage.store.tables import arrow_schema

    return arrow_schema(columns).empty_table()


def _literal_glob(path: str) -> str:
    """``path`` as a DuckDB glob matching only itself: each glob character becomes a class of one."""
    return "".join(f"[{c}]" if c in _GLOB else c for c in path)


class Store:
    """The events table at one location, read through DuckDB by any number of processes."""

    def __init__(
        self,
        store: Path | StoreLocation,
        *,
        snapshot: SnapshotRef = None,
        holdings: bool = True,
        threads: int | None = None,
    ) -> None:
        """Point at a store (a folder means the embedded one in it); ``snapshot`` pins a past state.

        ``holdings=False`` reads the events alone (what the holdings maintainer itself reads).
        ``threads``: DuckDB's threads for each query (None: DuckDB's own choice, one per core). A
        process among several answering at once (the console's workers) does better with fewer:
        a person's lookup reads one row group, which a second thread does not speed up but does cost.
        """
        if threads is not None and threads < 1:
            raise ConfigurationError("threads", f"must be at least 1, not {threads}")
        self.location = as_location(store)
        self.root = self.location.root or Path(self.location.warehouse)
        self.snapshot = snapshot
        self.with_holdings = holdings
        self.threads = threads
        self._lock = threading.Lock()  # guards the pin, the reader and its cursors: held between queries only
        self._reader: _Reader | None = None
        self.snapshot_id: int | None = None
        """The events snapshot the last connection read (None: the table held nothing yet)."""
        self.holdings_snapshot_id: int | None = None
        """The holdings snapshot it read (None: none stored for it, computed in memory)."""
        self.behind = 0
        """Events stored after those the holdings it read reflect (the holdings maintainer is behind)."""
        self._catalog: SqlCatalog | None = None
        # the last pin, under the catalog's state it was planned in and the snapshot it was asked for
        self._pinned: tuple[Versions, str, Pinned] | None = None
        self._origin: Store | None = None  # set on a ``pinned`` copy: the store whose connection it shares
        self._fixed: Pinned | None = None  # set on a ``pinned`` copy: the one state it reads
        self._certificates: CertificateIndex | None = None  # made on the first forget seen

    def pinned(self) -> Store:
        """A copy of this store held at the state it reads now: every query through the copy reads that one state.

        One answer's queries then agree with each other and with its stamp (``snapshot_id``,
        ``behind``), which belong to the copy alone: another thread's answer on this store, or a
        consumer's commit meanwhile, changes neither. The copy borrows this store's connection while
        it reads the same snapshot, so holding a read costs no new plan. A copy's copy is itself.
        """
        if self._fixed is not None:
            return self
        pin = self._pin()
        held = Store(self.location, snapshot=pin.events_snapshot, holdings=self.with_holdings, threads=self.threads)
        held._origin, held._fixed, held._catalog = self, pin, self._catalog
        held.snapshot_id, held.holdings_snapshot_id, held.behind = (
            pin.events_snapshot, pin.holdings_snapshot, pin.behind
        )
        return held

    def holds_events(self) -> bool:
        """Whether a consumer has committed to the store (its table exists and has a snapshot)."""
        try:
            return self.location.load().current_snapshot() is not None
        except StoreNotFoundError:
            return False

    def certificates(self) -> Mapping[str, Certificate]:
        """Each identifier digest's newest erasure certificate now (empty: none), whatever this store's read.

        Kept by the store a pinned copy came from, so a process reads the certificates again only
        after a forget (``CertificateIndex``).
        """
        # the versions now, not those of the read: a forget that began after the read was planned
        # must count (its rows may still be in the read), as must a table made since
        origin = self._origin or self
        version = self.erasures_version()
        if version is None:  # no one was ever forgotten: nothing to read (nor pyiceberg to import)
            return _NO_CERTIFICATES
        from lineage.store.certificate import CertificateIndex

        with origin._lock:
            if origin._certificates is None:
                origin._certificates = CertificateIndex()
            index = origin._certificates
        return index.of(self.location, version)

    def erasures_version(self) -> str | None:
        """The erasure certificates table's version now (its metadata file; None: no one was ever forgotten).

        Every forget changes it as it begins, before it removes anything: what was computed from a
        read under another version may count or name the person (the console's kept registers).
        """
        origin = self._origin or self
        with origin._lock:
            versions = origin._versions_locked()
        return dict(versions).get(ERASURES)

    def kept(self, name: str, compute: Callable[[], str | None], valid: Callable[[str], bool]) -> str | None:
        """A fact of the read this store pins that costs a scan: computed once, then kept with its plan.

        A process opening the same state later reads it instead (``lineage.store.plans``) if
        ``valid`` accepts its text; ``name`` must say whatever else it depends on (a snapshot id).
        """
        origin = self._origin or self
        pin = self._pin()
        with origin._lock:
            last = origin._pinned
        if last is None or last[2] is not pin:  # pinned before a newer read: computed, not kept
            return compute()
        versions, asked, _ = last
        path, key = self.location.plans_file(), f"{name} of {asked}"  # the same name read another way differs
        if (found := plans.kept_fact(path, versions, key)) is not None and valid(found):
            return found
        value = compute()
        # not if a commit (a forget) came meanwhile: its removal of the file must stand
        if path is not None and self.location.versions() == versions:
            plans.keep(path, versions, fact=(key, value))
        return value

    def _pin(self) -> Pinned:
        """What to read now; the last answer's plan while neither table has changed since."""
        with self._lock:
            return self._pin_locked()

    def _pin_locked(self) -> Pinned:
        if self._fixed is not None:
            return self._fixed
        versions = self._versions_locked()
        asked = json.dumps([self.snapshot, self.with_holdings])
        if self._pinned is not None and self._pinned[:2] == (versions, asked):
            return self._pinned[2]
        if self._pinned is not None and self._pinned[:2] == (versions, json.dumps([None, self.with_holdings])):
            # the newest read asked for again by its events snapshot's id (as ``lineage.cli`` pins a
            # command's read): ``pinned_state`` plans that id to the same files, so it is not planned twice
            newest = self._pinned[2]
            if isinstance(self.snapshot, int) and newest.events_snapshot == self.snapshot:
                self._pinned = (versions, asked, newest)
                return newest
        # the holdings maintainer's reads (events alone, a new state each refresh) keep no plan
        path = self.location.plans_file() if self.with_holdings else None
        pinned = plans.kept_plan(path, versions, asked)  # another process planned it
        if pinned is None:
            from lineage.store.holdings import pinned_state

            pinned = pinned_state(self.location, self.snapshot, holdings=self.with_holdings)
            # kept only if nothing committed while it was planned: else it may be of the newer state
            if path is not None and self._versions_locked() == versions:
                plans.keep(path, versions, plan=(asked, pinned))
        if self.with_holdings and not self.location.on_s3:  # readers answering people, not the maintainer's scans
            pinned = _described(pinned, versions)
        self._pinned = (versions, asked, pinned)
        return pinned

    def _versions_locked(self) -> Versions:
        """Each table's metadata file now; an embedded catalog read without opening pyiceberg's."""
        if self._catalog is None and self.location.catalog_file() is not None:
            return self.location.versions()
        if self._catalog is None:
            self._catalog = self.location.catalog()
        return self.location.versions(self._catalog)

    def connect(self, taxonomy: Taxonomy | None = None) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with an ``events`` view over the pinned snapshot's files.

        Also ``holding_runs``, ``flow_seq``, ``links`` and ``persons`` over the holdings made from
        that snapshot (computed in memory when none are stored). With ``taxonomy``, also tables
        ``regions(code, zone)`` and ``sensitive_categories(key)`` for the answers that need them.
        A store with no table is ``StoreNotFoundError``.
        """
        return self._connect(self._pin(), taxonomy)

    def _connect(self, pinned: Pinned, taxonomy: Taxonomy | None) -> duckdb.DuckDBPyConnection:
        return self._open(pinned, taxonomy)[0]

    def _open(
        self, pinned: Pinned, taxonomy: Taxonomy | None, *, lookups: bool = False
    ) -> tuple[duckdb.DuckDBPyConnection, dict[str, Any], Bounds, Footers]:
        """A connection as ``connect`` makes it, the Arrow datasets registered on it by name, the files' bounds.

        A registration belongs to its connection alone, so each cursor registers them again.
        ``lookups``: for sessions, whose lookups read a person's few files: when the manifests gave
        the bounds, each local file's footer is checked only before a query reads it (``Footers``).
        """
        registered: dict[str, Any] = {}
        self.snapshot_id, self.holdings_snapshot_id, self.behind = (
            pinned.events_snapshot, pinned.holdings_snapshot, pinned.behind
        )
        files = pinned.event_files + pinned.holdings_files
        by_name = False  # the event files differ in columns: DuckDB reads them by name
        bounds = Bounds()
        unchecked = Footers(self.location, {})
        stored = pinned.holdings_snapshot is not None  # else holdings_all is computed, not these files
        if not self.location.on_s3 and pinned.mixed_layouts is not None:
            # the manifests gave the bounds and layouts; the footers are checked as the files are read
            # (all now, unless only lookups follow and the holdings are stored, not computed from every event)
            expected = dict(zip(files, pinned.event_rows + pinned.holdings_rows, strict=True))
            unchecked = Footers(self.location, expected, pinned.reset_files)
            if not (lookups and stored):
                unchecked.check(None)  # before DuckDB opens any file
            by_name = pinned.mixed_layouts
            bounds = Bounds(
                pinned.event_bounds if _named_as_given(pinned.event_files) else None,
                pinned.holdings_bounds if stored and _named_as_given(pinned.holdings_files) else None,
            )
        elif not self.location.on_s3:
            footers = Footers(self.location, {}).read(files, pinned.event_rows + pinned.holdings_rows)
            events = footers[: len(pinned.event_files)]
            by_name = len({tuple(meta.schema.to_arrow_schema().names) for meta in events}) > 1
            bounds = Bounds(
                [bounds_of(f, meta, ["subject_id"]) for f, meta in zip(pinned.event_files, events, strict=True)]
                if _named_as_given(pinned.event_files) else None,
                [bounds_of(f, meta, ["subject", "bucket"])
                 for f, meta in zip(pinned.holdings_files, footers[len(events):], strict=True)]
                if stored and _named_as_given(pinned.holdings_files) else None,
            )  # fmt: skip
        else:
            bounds = Bounds(pinned.event_bounds, pinned.holdings_bounds if stored else None)
        if bounds.holdings is not None:
            bounds = dataclasses.replace(bounds, resets=pinned.reset_files)
        try:
            con = duckdb.connect(":memory:")
            con.execute("SET GLOBAL TimeZone = 'UTC'")  # GLOBAL: the cursors made from it read UTC too
            # DuckDB's Python connection draws a progress bar on stdout for a query past 2 s (its cursors do
            # not): under load that line landed in a command's output
            con.execute("SET enable_progress_bar = false")
            if self.threads is not None:
                con.execute(f"SET threads = {int(self.threads)}")
            # keep each file's footer once read: a person's answer is seven small queries, and reading
            # the footers of every file again for each was most of a lookup (at 100k subjects an
            # events query went from 15 to 5 ms). Data files are never rewritten in place.
            con.execute("SET GLOBAL parquet_metadata_cache = true")
            self._view(con, registered, "events", pinned.event_files, EVENT_FIELDS, by_name=by_name,
                       reflects=pinned.reflects)  # fmt: skip
            resets: list[str] = []
            if pinned.holdings_snapshot is not None:
                self._view(con, registered, "holdings_all", pinned.holdings_files, HOLDING_FIELDS)
                resets = list(pinned.reset_files)
            elif self.with_holdings:
                from lineage.store.holdings import holdings_arrow

                computed = holdings_arrow(self._computed(con, registered, pinned))
                _create_views(con, "holdings_all", con.from_arrow(computed).project(_NO_FILE))
            else:
                _create_views(con, "holdings_all", con.from_arrow(_empty(HOLDING_FIELDS)).project(_NO_FILE))
            # the resets alone (a small file, or none): the runs they drop are left out by ``holding_runs``.
            # None: a view DuckDB knows is empty, so the join drops out of every plan (an empty Arrow
            # table still cost ~0.7 ms a lookup, measured)
            if resets:
                self._view(con, registered, "holding_resets", resets, HOLDING_FIELDS)
            else:
                con.execute(_NO_RESETS)
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
        return con, registered, bounds, unchecked

    def _computed(self, con: duckdb.DuckDBPyConnection, registered: dict[str, Any], pinned: Pinned) -> HoldingsEngine:
        """The holdings of the pinned events computed in memory: from every event, or after retention from ``base``.

        The stored holdings in ``base`` keep what the retired events made; the events they do not
        reflect are applied to them as the maintainer would (a late one rolls them back to its time).
        """
        floor = pinned.retained_before
        if pinned.base is None:
            engine = HoldingsEngine()
            engine.apply(_engine_events(con, {}, None, floor))
            return engine
        from lineage.store.holdings import engine_from_table

        self._view(con, registered, "holdings_base", pinned.holdings_files, HOLDING_FIELDS)
        engine = engine_from_table(con.sql("SELECT * FROM holdings_base").to_arrow_table(), pinned.base.watermark)
        batch, _ = engine.catch_up(
            _engine_events(con, pinned.base.applied, None, floor), lambda since: _engine_events(con, {}, since, floor)
        )
        engine.apply(batch, ordered=True)
        return engine

    def engine_events(
        self,
        applied: Offsets,
        since: int | None,
        *,
        floor: int | None | EllipsisType = ...,
        bounds: Offsets | None = None,
    ) -> Iterator[Event]:
        """The events the holdings engine reads, in event-time order (``Scan.events``, on a scan of their own)."""
        with self.scan() as scan:
            yield from scan.events(applied, since, floor=floor, bounds=bounds)

    def holdback(self, applied: Offsets, *, floor: int | None, through: Offsets | None = None) -> Offsets:
        """Per partition with new events that should wait, the first such offset (``Scan.holdback``)."""
        with self.scan() as scan:
            return scan.holdback(applied, floor=floor, through=through)

    @contextmanager
    def scan(self, offsets: dict[str, SourceOffsets] | None = None) -> Iterator[Scan]:
        """One connection for the holdings maintainer's reads of the pinned snapshot, closed after.

        ``offsets``: each event file's highest offsets per partition, as far as known: kept by the
        caller between scans (files are never rewritten), and completed by this one.
        """
        pinned = self._pin()
        con, registered, known, _ = self._open(pinned, None)
        try:
            # file names as DuckDB reports them (else no file is left out: see _named_as_given), and
            # every event of them (a reader cut to held-back holdings would learn lower offsets)
            files = pinned.event_files if known.events is not None and pinned.reflects is None else None
            scan = Scan(con, registered, files, pinned.retained_before, {} if offsets is None else offsets)
        except BaseException:
            con.close()
            raise
        try:
            yield scan
        finally:
            scan.close()

    def _view(
        self,
        con: duckdb.DuckDBPyConnection,
        registered: dict[str, Any],
        name: str,
        files: list[str],
        columns: Sequence[tuple[str, str]],
        *,
        by_name: bool = False,
        reflects: Offsets | None = None,
    ) -> None:
        """The view ``name`` over exactly ``files`` (a dataset it registers is added to ``registered``).

        ``reflects``: only the rows at or below these offsets (``_create_views``).

        Local files go to DuckDB's own Parquet reader (parallel, with row-group pruning: an access
        lookup ran ~10x faster than through Arrow), each path's glob characters escaped as one-character
        classes, since DuckDB expands globs even in a list of paths. S3 files go through a pyarrow
        dataset: DuckDB here cannot download the extension it would need to read s3:// itself.
        """
        if not files:
            _create_views(con, name, con.from_arrow(_empty(columns)).project(_NO_FILE), reflects)
        elif self.location.on_s3 or any(_BACKSLASH in f for f in files):
            _dataset_view(self.location, con, registered, (name, files, columns), reflects)
        else:
            # a relation, not SQL text: a view over read_parquet($files) cannot be prepared.
            # ``by_name`` when the files' columns differ (some written before a column was added:
            # null there); only then, since it slowed an access answer about 1.8x (measured at
            # 100k subjects). A column no file has yet is added as null: queries see ``columns`` whole.
            # Each column cast to the table's type: DuckDB takes the types from the first file it lists
            # and converts the others to them, so another writer's first file (text as plain bytes, a
            # zone-less time) would otherwise type the whole view. A cast to the type a column already
            # has is dropped when DuckDB binds it: filters still reach the scan (measured, EXPLAIN).
            globs = [_literal_glob(f) for f in files]
            try:
                relation, file_column = con.read_parquet(globs, union_by_name=by_name, filename=True), "filename"
            except duckdb.BinderException as exc:
                if "Option filename" not in str(exc):
                    raise
                # a file has a column ``filename`` of its own, the name DuckDB's file column takes: that
                # one under a name of ours (the SQL form can rename it, the Python one cannot; it is
                # not the first choice: its view's subqueries cost ~1 ms more a lookup, measured)
                relation, file_column = _renamed_file_column(con, globs, by_name, name, self.location), _FILE_COLUMN
            typed = ", ".join(_typed(relation, column, kind, name, self.location) for column, kind in columns)
            # another writer's own columns kept as they are, quoted (any name may come in a file); DuckDB's
            # names are case-insensitive, so one differing from ours in case only is ours (``_typed``)
            ours = {c.lower() for c, _ in columns} | {file_column, "data_file"}
            rest = "".join(f", {_name(c)}" for c in relation.columns if c.lower() not in ours)
            _create_views(con, name, relation.project(f"{typed}{rest}, {file_column} AS data_file"), reflects)

    @contextmanager
    def session(self, taxonomy: Taxonomy | None = None) -> Iterator[Session]:
        """Several queries on one cursor of a connection kept while the snapshot is unchanged.

        Opening a connection plans the snapshot's files and loads the macros; a process answering
        many requests pays it once per new snapshot. Sessions on other threads run at the same time:
        each borrows a cursor of that connection (DuckDB runs one query per cursor at a time), so a
        slow answer no longer holds up quick ones.
        A session that began on an older snapshot finishes on it; its connection closes after.
        """
        if self._origin is not None:  # a ``pinned`` copy: its state, on the connection of the store it came from
            with self._origin._session_at(self._fixed, taxonomy) as held:
                yield held
            return
        with self._session_at(None, taxonomy) as session:
            yield session

    @contextmanager
    def _session_at(self, fixed: Pinned | None, taxonomy: Taxonomy | None) -> Iterator[Session]:
        """A session reading ``fixed`` (None: what this store pins now)."""
        with self._lock:
            pinned = fixed or self._pin_locked()
            # the cut too: a refresh that applies what was held back and changes no row moves neither snapshot
            cut = None if pinned.reflects is None else json.dumps(pinned.reflects, sort_keys=True)
            key = (pinned.events_snapshot, pinned.holdings_snapshot, cut, id(taxonomy))
            if self._reader is None or self._reader.key != key:
                self._retire()
                self._reader = _Reader(key, *self._open(pinned, taxonomy, lookups=True), location=self.location)
            self.snapshot_id, self.holdings_snapshot_id, self.behind = (
                pinned.events_snapshot,
                pinned.holdings_snapshot,
                pinned.behind,
            )
            reader = self._reader
            cursor = reader.borrow()
        try:
            files = pinned.event_files + pinned.holdings_files
            yield Session(cursor, self.location, files, reader.bounds, reader.footers, reader.points)
        finally:
            with self._lock:
                reader.give_back(cursor)

    def close(self) -> None:
        """Close the connection kept by ``session`` (at once, or when the sessions using it end)."""
        with self._lock:
            self._retire()

    def _retire(self) -> None:
        if self._reader is not None:
            self._reader.retire()
            self._reader = None

    def rows(
        self, query: QueryName, params: list[Any] | dict[str, Any] | None = None, taxonomy: Taxonomy | None = None
    ) -> list[dict[str, Any]]:
        """Run a query from ``queries/`` (by file name, without .sql) with bound parameters; rows as dicts."""
        return self.sql(query_text(query), params, taxonomy)

    def sql(
        self, text: str, params: list[Any] | dict[str, Any] | None = None, taxonomy: Taxonomy | None = None
    ) -> list[dict[str, Any]]:
        """Run SQL with bound parameters over a fresh view of the store; rows as dicts."""
        pinned = self._pin()
        with self._connect(pinned, taxonomy) as con:
            return _rows(con, text, params, self.location, pinned.event_files + pinned.holdings_files)

    def count(self) -> int:
        """How many events the store holds."""
        return int(self.sql("SELECT count(*) AS n FROM events")[0]["n"])

    def event_ids(self) -> list[str]:
        """Every stored event id, duplicates included (for exactness checks)."""
        return [r["event_id"] for r in self.sql("SELECT event_id FROM events")]

    def compact(self, **options: Any) -> CompactionReport:
        """Rewrite small files sorted by subject, expire old snapshots, remove unreferenced files."""
        from lineage.store.maintenance import compact

        return compact(self.location, **options)


class Scan:
    """The holdings maintainer's reads of one snapshot on one connection: the holdback bounds, new events, a replay.

    Opening a connection reads the snapshot's footers, makes its views and loads the macros (~50 ms
    at 600,000 events in 61 files), and a refresh reads a snapshot two or three times. Each read
    runs on a cursor of its own. The new events are read from the files holding events after the
    offsets applied alone (``file_bounds.files_after``), so a refresh reads what was stored since
    the last, not the whole history again. DuckDB's sort of the events is bounded to 2 GB and
    spills to a private folder, removed by ``close`` (at 20M events it otherwise held gigabytes
    beside the engine's state).
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        registered: dict[str, Any],
        files: list[str] | None,
        retained_before: int | None,
        offsets: dict[str, SourceOffsets],
    ) -> None:
        """Read through ``con`` (``Store.scan`` opens it) the event ``files`` (None: their names unknown)."""
        self._con = con
        self._registered = registered
        self._files = files
        self._retained_before = retained_before
        self._offsets = offsets
        # settings of the database, which its cursors share: made once, before anything could spill
        spill = tempfile.mkdtemp(prefix="lineage-sort-")
        try:
            con.execute(f"SET temp_directory = '{_sql_string(spill)}'")
            con.execute("SET memory_limit = '2GB'")
        except BaseException:
            shutil.rmtree(spill, ignore_errors=True)
            raise
        self._spill = spill

    def events(
        self,
        applied: Offsets,
        since: int | None,
        *,
        floor: int | None | EllipsisType = ...,
        bounds: Offsets | None = None,
    ) -> Iterator[Event]:
        """The events the holdings engine reads, in event-time order.

        Those after the ``applied`` offsets (read from the files that may hold them alone), or
        (``since``, microseconds) every one from that time on. ``floor``: the retention cut-off to
        read them under (an older event reads as at it, with its own time as
        ``Event.clamped_from``), the one the caller's engine state was made under; by default the
        store's as this scan pins it, which a retention run between the two would have moved.
        ``bounds``: per partition, the first offset left out (``holdback``'s).
        """
        files = self._files_after(applied) if since is None else None
        cursor = self._cursor()
        try:
            cut = self._retained_before if floor is ... else floor
            yield from _engine_events(cursor, applied, since, cut, bounds, files, spill=False)
        finally:
            cursor.close()

    def holdback(self, applied: Offsets, *, floor: int | None, through: Offsets | None = None) -> Offsets:
        """Per partition with new events (after ``applied``) that should wait, the first such offset.

        They wait from the low watermark on: the earliest, over partitions with new events, of each
        one's latest new event time (read under the retention cut-off ``floor``), so that no partition
        is applied ahead of another in event time. The new events up to ``through`` are applied
        whatever it is (then only those later than the latest of them wait). No bound when only one
        partition has new events (``queries/holdings_holdback.sql``).
        """
        files = self._files_after(applied)
        cursor = self._cursor()
        try:
            return _holdback(cursor, applied, through or {}, floor, files)
        finally:
            cursor.close()

    def _files_after(self, applied: Offsets) -> list[str] | None:
        """The event files holding events after ``applied`` (None: read every file).

        The offsets of the files not seen before are read once (``queries/event_file_offsets.sql``);
        those of files no longer in the snapshot (compacted, expired) are dropped.
        """
        if self._files is None or not applied:
            return None
        known, current = self._offsets, set(self._files)
        for path in [p for p in known if p not in current]:
            del known[path]
        missing = [f for f in self._files if f not in known]
        if missing:
            cursor = self._cursor()
            try:
                rows = cursor.execute(query_text("event_file_offsets"), {"files": missing}).fetchall()
            finally:
                cursor.close()
            found: dict[str, dict[tuple[str, int], int] | None] = {}
            for path, origin, partition, highest in rows:
                entry = found.setdefault(path, {})
                if entry is None:
                    continue
                if origin is None or partition is None or highest is None:
                    found[path] = None  # a row of no partition or offset (another writer's): always read
                else:
                    entry[(origin, partition)] = highest
            if len(found) < len(missing):
                # every data file holds a row: one with none is named otherwise by DuckDB than here
                return None
            known.update(found)
        return files_after({f: known[f] for f in self._files}, applied)

    def close(self) -> None:
        """Close the connection and remove its spill folder."""
        self._con.close()
        shutil.rmtree(self._spill, ignore_errors=True)

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = self._con.cursor()
        for name, dataset in self._registered.items():  # a registration belongs to its connection alone
            cursor.register(name, dataset)
        return cursor


class _Reader:
    """One snapshot's connection and the cursors sessions borrow from it, one session per cursor.

    Cursors share the connection's database (its views, macros and tables, and the Parquet footers
    it has read) and each runs its own query; an idle one is kept for the next session rather than
    made again. The owning ``Store`` holds its lock around every call.
    """

    def __init__(
        self,
        key: tuple[int | None, int | None, str | None, int],
        con: duckdb.DuckDBPyConnection,
        registered: dict[str, Any],
        bounds: Bounds,
        footers: Footers,
        *,
        location: StoreLocation,
    ) -> None:
        self.key = key
        self.bounds = bounds
        self.footers = footers
        #: the identity lookups' reads of local files (their footers kept while this snapshot is read)
        self.points = None if location.on_s3 else PointReader(location)
        self._con = con
        self._registered = registered
        self._idle: list[duckdb.DuckDBPyConnection] = []
        self._busy = 0
        self._retired = False

    def borrow(self) -> duckdb.DuckDBPyConnection:
        """An idle cursor, or a new one with the connection's datasets registered on it."""
        if self._idle:
            cursor = self._idle.pop()
        else:
            cursor = self._con.cursor()
            for name, dataset in self._registered.items():
                cursor.register(name, dataset)
        self._busy += 1
        return cursor

    def give_back(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Keep the cursor for the next session; close all once retired and no session uses them."""
        self._busy -= 1
        self._idle.append(cursor)
        if self._retired and self._busy == 0:
            self._close()

    def retire(self) -> None:
        """Take no new session; close when the last one ends (now, if none is running)."""
        self._retired = True
        if self._busy == 0:
            self._close()

    def _close(self) -> None:
        for cursor in self._idle:
            cursor.close()
        self._idle.clear()
        self._con.close()


def _by_partition(offsets: Offsets) -> tuple[list[str], list[int], list[int]]:
    """``offsets`` as three parameter lists of the same order: origins, partitions and offsets."""
    return (
        [o for o, parts in offsets.items() for _ in parts],
        [p for parts in offsets.values() for p in parts],
        [off for parts in offsets.values() for off in parts.values()],
    )


def _holdback(
    con: duckdb.DuckDBPyConnection, applied: Offsets, through: Offsets, floor: int | None, files: list[str] | None
) -> Offsets:
    """Rows of ``queries/holdings_holdback.sql``: each partition's first new offset that waits (in ``files``)."""
    origins, partitions, offsets = _by_partition(applied)
    through_origins, through_partitions, through_offsets = _by_partition(through)
    params: dict[str, Any] = {
        "origins": origins,
        "partitions": partitions,
        "offsets": offsets,
        "through_origins": through_origins,
        "through_partitions": through_partitions,
        "through_offsets": through_offsets,
        "floor": None if floor is None else _EPOCH + timedelta(microseconds=floor),
        "files": files,
    }
    out: Offsets = {}
    for origin, partition, bound in con.execute(query_text("holdings_holdback"), params).fetchall():
        out.setdefault(origin, {})[partition] = bound
    return out


def _engine_events(
    con: duckdb.DuckDBPyConnection,
    applied: Offsets,
    since: int | None,
    floor: int | None,
    bounds: Offsets | None = None,
    files: list[str] | None = None,
    *,
    spill: bool = True,
) -> Iterator[Event]:
    """Rows of ``queries/holdings_events.sql`` as engine events, a batch of rows at a time.

    ``floor``: the retention cut-off (µs); an event older than it reads as occurring at it.
    ``bounds``: per partition, the first offset left out (held back); None or a partition not named: none.
    ``files``: the event files to read (those that may hold events after ``applied``); None: every one.
    ``spill``: bound the sort to 2 GB, spilling to a folder of its own (False: ``con``'s settings do).
    """
    origins, partitions, offsets = _by_partition(applied)
    held_origins, held_partitions, held_bounds = _by_partition(bounds or {})
    params = {
        "origins": origins,
        "partitions": partitions,
        "offsets": offsets,
        "held_origins": held_origins,
        "held_partitions": held_partitions,
        "bounds": held_bounds,
        "since": None if since is None else _EPOCH + timedelta(microseconds=since),
        "floor": None if floor is None else _EPOCH + timedelta(microseconds=floor),
        "files": files,
    }
    # the events come sorted by time: bound DuckDB's sort to 2 GB and let it spill to a private
    # folder of its own (at 20M events it otherwise held gigabytes beside the engine's state)
    folder = tempfile.mkdtemp(prefix="lineage-sort-") if spill else None
    try:
        if folder is not None:
            con.execute(f"SET temp_directory = '{_sql_string(folder)}'")
            con.execute("SET memory_limit = '2GB'")
        reader = con.sql(query_text("holdings_events"), params=params).to_arrow_reader(50_000)
        assert reader is not None
        first = True
        for batch in reader:
            if first and batch.num_rows > 1:
                # the first event alone: a caller that stops there (HoldingsEngine.catch_up finding a
                # late event, then replaying from its time) converts no more of the batch
                yield from _as_events(batch.slice(0, 1))
                batch = batch.slice(1)
            first = False
            yield from _as_events(batch)
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _as_events(batch: pa.RecordBatch) -> Iterator[Event]:
    """The rows of one batch of ``queries/holdings_events.sql`` as engine events."""
    intern = sys.intern
    cols = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
    # the same few names and categories over millions of rows: one string object each
    cols[4] = [None if v is None else intern(v) for v in cols[4]]  # subject_id
    cols[6] = [[intern(c) for c in v] for v in cols[6]]  # categories
    cols[7] = [intern(v) for v in cols[7]]  # holder
    return map(Event._make, zip(*cols, strict=True))


def _typed(
    relation: duckdb.DuckDBPyRelation, column: str, kind: str, table: str, location: StoreLocation
) -> str:
    """``column`` of the files cast to the table's ``kind`` (NULL when they lack it), as a projection's item.

    Found as DuckDB finds names, case aside. A list, struct or map where the table has a value, or a
    value where it has a list, is refused: the cast would turn ['s1'] into the text '[s1]', matching
    no one, silently.
    """
    found = next((c for c in relation.columns if c == column), None) or next(
        (c for c in relation.columns if c.lower() == column.lower()), None
    )
    if found is None:
        return f"CAST(NULL AS {KINDS[kind]}) AS {_name(column)}"
    stored = str(relation.types[relation.columns.index(found)])
    nested = stored.endswith("]") or stored.startswith(("STRUCT", "MAP", "UNION"))
    if not (stored.endswith("[]") if kind == "list<string>" else not nested):
        raise StoreError(
            f"the {table} files of {location.describe()} hold {column} as {stored}, where the table has "
            f"{KINDS[kind]}: rewrite them with the table's types",
            path=location.describe(),
        )
    return f"CAST({_name(found)} AS {KINDS[kind]}) AS {_name(column)}"


def _name(column: str) -> str:
    """A column's name as a quoted SQL identifier."""
    return '"' + column.replace('"', '""') + '"'


def _sql_string(text: str) -> str:
    """``text`` as the inside of a SQL string literal (SET takes no bound parameter)."""
    return text.replace("'", "''")
