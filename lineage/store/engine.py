"""The lineage store as DuckDB sees it: an ``events`` view over the live segments. The only duckdb module.

Why segments and not one DuckDB file: DuckDB lets one process write a database file, and analysts
must query while several consumers write. Immutable Parquet segments let any number of processes
read (each opens its own in-memory DuckDB over them) while consumers add files atomically; no
process ever waits on another's lock. ``compact`` merges a partition's small segments into one
sorted by subject, so a subject's lookup reads few row groups.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import duckdb

from lineage.contract.taxonomy import Taxonomy
from lineage.errors import ConfigurationError, StoreError
from lineage.resources import shipped_dir
from lineage.store.segments import (
    COLUMNS,
    SEGMENTS,
    Segment,
    list_segments,
    partition_lock,
    remove_superseded,
    segment_rows,
    write_merged,
)

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


@dataclass(frozen=True, slots=True)
class CompactionReport:
    """What a compaction run did."""

    merged_groups: int
    segments_in: int
    removed: int


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

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        """Wrap an open connection (``Store.session`` makes one)."""
        self._con = con

    def rows(self, query: QueryName, params: list[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run ``queries/<query>.sql`` with bound parameters; rows as dicts."""
        return _rows(self._con, query_text(query), params)

    def execute(self, query: QueryName, params: list[Any] | dict[str, Any] | None = None) -> None:
        """Run ``queries/<query>.sql`` for its effect (a temporary table the next queries read)."""
        try:
            self._con.execute(query_text(query), params or [])
        except duckdb.Error as exc:
            raise StoreError(f"query {query} failed: {exc}", query=query) from exc


def _rows(con: duckdb.DuckDBPyConnection, text: str, params: list[Any] | dict[str, Any] | None) -> list[dict[str, Any]]:
    try:
        # through Arrow: DuckDB's own row conversion of TIMESTAMPTZ needs pytz
        rows: list[dict[str, Any]] = con.sql(text, params=params or []).to_arrow_table().to_pylist()
    except duckdb.Error as exc:
        raise StoreError(f"query failed: {exc}") from exc
    return rows


class Store:
    """A folder of segments, opened read-only by any number of processes."""

    def __init__(self, root: Path) -> None:
        """Point at the store folder (created by the first consumer)."""
        self.root = root
        self._lock = threading.Lock()
        self._cached: tuple[tuple[tuple[Path, ...], int], duckdb.DuckDBPyConnection] | None = None

    def holds_events(self) -> bool:
        """Whether the folder is a store a consumer has written to (it has a segments folder)."""
        return (self.root / SEGMENTS).is_dir()

    def segments(self) -> list[Segment]:
        """The live segments, in source/partition/offset order."""
        return list_segments(self.root)

    def connect(self, taxonomy: Taxonomy | None = None) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with an ``events`` view over the segments as of now.

        With ``taxonomy``, also tables ``regions(code, zone)`` and ``sensitive_categories(key)``
        for the answers that need them.
        """
        try:
            con = duckdb.connect(":memory:")
            con.execute("SET TimeZone = 'UTC'")
            files = [str(s.path) for s in self.segments()]
            if files:
                rel = con.read_parquet(files)
            else:
                # no segment yet: an empty view with the right columns, so queries still run
                rel = con.from_arrow(COLUMNS.empty_table())
            rel.create_view("events")
            con.execute(query_text("_macros"))
            if taxonomy is not None:
                con.execute("CREATE TABLE regions (code VARCHAR, zone VARCHAR)")
                con.executemany(
                    "INSERT INTO regions VALUES (?, ?)", [(r.key, r.zone) for r in taxonomy.regions.values()]
                )
                con.execute("CREATE TABLE sensitive_categories (key VARCHAR)")
                sensitive = [(c.key,) for c in taxonomy.categories.values() if c.sensitive]
                con.executemany("INSERT INTO sensitive_categories VALUES (?)", sensitive)
        except (duckdb.Error, OSError) as exc:
            raise StoreError(f"cannot open the store at {self.root}: {exc}", path=self.root) from exc
        return con

    @contextmanager
    def session(self, taxonomy: Taxonomy | None = None) -> Iterator[Session]:
        """Several queries on one connection, kept for the next session while the segments are unchanged.

        Opening a connection lists the segments and loads the macros (~30 ms on 20 segments); a
        process answering many requests pays it once per change of the store. Sessions of one
        ``Store`` run one at a time (a DuckDB connection is not shared between threads).
        """
        with self._lock:
            key = (tuple(s.path for s in self.segments()), id(taxonomy))
            if self._cached is None or self._cached[0] != key:
                self.close()
                self._cached = (key, self.connect(taxonomy))
            yield Session(self._cached[1])

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
        with self.connect(taxonomy) as con:
            return _rows(con, text, params)

    def count(self) -> int:
        """How many events the store holds."""
        return int(self.sql("SELECT count(*) AS n FROM events")[0]["n"])

    def event_ids(self) -> list[str]:
        """Every stored event id, duplicates included (for exactness checks)."""
        return [r["event_id"] for r in self.sql("SELECT event_id FROM events")]

    def compact(self, *, min_segments: int = 4, max_rows: int = 2_000_000, grace_s: float = 300.0) -> CompactionReport:
        """Merge runs of small segments per partition, dropping repeated event ids; remove old leftovers.

        A merged segment supersedes the ones it covers at once (readers skip them); their files are
        deleted by a later run once older than ``grace_s``, so queries already reading them finish.
        """
        groups = 0
        merged_in = 0
        by_partition: dict[tuple[str, int], list[Segment]] = {}
        for seg in self.segments():
            by_partition.setdefault((seg.source, seg.partition), []).append(seg)
        for segs in by_partition.values():
            run: list[Segment] = []
            rows = 0
            for seg in segs:
                n = segment_rows(seg)
                if run and rows + n > max_rows:
                    groups, merged_in = self._merge(run, groups, merged_in, min_segments)
                    run, rows = [], 0
                run.append(seg)
                rows += n
            groups, merged_in = self._merge(run, groups, merged_in, min_segments)
        removed = remove_superseded(self.root, grace_s)
        return CompactionReport(groups, merged_in, removed)

    def _merge(self, run: list[Segment], groups: int, merged_in: int, min_segments: int) -> tuple[int, int]:
        if len(run) < min_segments:
            return groups, merged_in
        start = time.perf_counter()
        first = run[0]
        # under the partition's lock, and only if the run is still what is live: two compactions
        # at once must not leave overlapping segments that both count
        with partition_lock(self.root, first.source, first.partition):
            live = {
                s.path for s in list_segments(self.root) if (s.source, s.partition) == (first.source, first.partition)
            }
            if not all(s.path in live for s in run):
                return groups, merged_in
            table = self._merged_table(run)
            merged = write_merged(run, table.cast(COLUMNS))
        log.info(
            "compacted segments=%d rows=%d into=%s seconds=%.2f",
            len(run),
            table.num_rows,
            merged.path.name,
            time.perf_counter() - start,
        )
        return groups + 1, merged_in + len(run)

    @staticmethod
    def _merged_table(run: list[Segment]) -> Any:
        with duckdb.connect(":memory:") as con:
            con.read_parquet([str(s.path) for s in run]).create_view("seg")
            table = con.sql(
                "SELECT * FROM seg QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY kafka_offset) = 1 "
                "ORDER BY subject_id, occurred_at"
            ).to_arrow_table()
        return table
