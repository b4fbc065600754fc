"""Which data files of a snapshot may hold given values of a column: a lookup opens those alone.

A person's answer reads a few rows, but DuckDB opens every file of a view for each query before
its row-group statistics let it skip them: at 1M subjects / 20M events (48 event files, 18 holdings
files) that per-file cost was most of a lookup. Each file's footer (read once per snapshot) gives
the range of a column over the file; a query given the files whose range admits the values it asks
for reads those alone (DuckDB skips the others by the ``data_file`` column before opening them).

A file is left out only when its footer proves it holds none of the values: a column without
statistics in some row group (not written, or dropped as too long) reads as "may hold anything".

No footer is read when a snapshot is opened: the bounds the table's manifests keep for each file
serve instead (``manifest_bounds`` from pyiceberg's plan on S3, ``entry_bounds`` from the manifests
read with fastavro on a local store; ``bounds_of`` reads a footer when neither can). Iceberg writers
truncate a string's bounds (16 characters by default) to a lower prefix and an upper bound still
above every value, so they stay bounds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a reader narrowing its lookups to files imports neither
    import pyarrow.parquet as pq
    from pyiceberg.manifest import DataFile
    from pyiceberg.schema import Schema

__all__ = ["FileBounds", "SourceOffsets", "bounds_of", "entry_bounds", "files_admitting", "files_after",
           "files_with_nulls", "manifest_bounds"]  # fmt: skip

_ANY = None  # a column's range when the footer cannot bound it

#: an event file's highest offset in each source partition it holds, {(origin, partition): offset};
#: None when some row names no partition
SourceOffsets = Mapping[tuple[str, int], int] | None


@dataclass(frozen=True, slots=True)
class FileBounds:
    """One data file and, per column asked about, the range of its values (``None``: unbounded).

    A range of ``()`` means the column is null in every row: no value is equal to it.
    """

    path: str
    ranges: Mapping[str, tuple[Any, ...] | None]
    nullable: frozenset[str] = frozenset()  # the columns asked about that may be null in some row


def bounds_of(path: str, meta: pq.FileMetaData, columns: Iterable[str]) -> FileBounds:
    """The ranges of ``columns`` over the file whose footer is ``meta``."""
    leaves = [meta.schema.column(i).path for i in range(meta.num_columns)]  # row groups index leaf columns
    ranges: dict[str, tuple[Any, ...] | None] = {}
    nullable = set()
    for column in columns:
        ranges[column] = _range(meta, leaves.index(column)) if column in leaves else ()
        if column not in leaves or _may_be_null(meta, leaves.index(column)):
            nullable.add(column)
    return FileBounds(path, ranges, frozenset(nullable))


def manifest_bounds(path: str, data_file: DataFile, schema: Schema, columns: Iterable[str]) -> FileBounds:
    """The ranges of ``columns`` over one data file, as the table's manifest records them.

    A bound that does not decode reads as "may hold anything". pyiceberg leaves out a row group
    whose statistics lack a min/max (pyarrow drops them for a value over 4 kB); our identifiers are
    at most 512 characters (``MAX_ID``), so the files we write always carry them.
    """
    from pyiceberg.conversions import from_bytes
    from pyiceberg.types import PrimitiveType

    def field_of(column: str) -> tuple[int, Callable[[bytes], Any] | None]:
        field = schema.find_field(column)
        kind = field.field_type
        return field.field_id, (lambda raw: from_bytes(kind, raw)) if isinstance(kind, PrimitiveType) else None

    return _recorded(
        path, columns, field_of, data_file.lower_bounds or {}, data_file.upper_bounds or {},
        data_file.null_value_counts or {}, data_file.value_counts or {},
    )  # fmt: skip


def entry_bounds(
    path: str, data_file: Mapping[str, Any], fields: Mapping[str, tuple[int, str]], columns: Iterable[str]
) -> FileBounds:
    """``manifest_bounds`` from a manifest entry's ``data_file`` as an Avro reader gives it (no pyiceberg).

    ``fields``: each column's field id and Iceberg type name. Only ``string``, ``int`` and ``long``
    bounds decode here (Iceberg's single-value form: UTF-8, little-endian); others read as unbounded.
    """

    def field_of(column: str) -> tuple[int, Callable[[bytes], Any] | None]:
        fid, kind = fields[column]
        return fid, _DECODERS.get(kind)

    def mapped(key: str) -> dict[int, Any]:
        return {int(kv["key"]): kv["value"] for kv in data_file.get(key) or ()}

    return _recorded(
        path, columns, field_of, mapped("lower_bounds"), mapped("upper_bounds"), mapped("null_value_counts"),
        mapped("value_counts"),
    )  # fmt: skip


_DECODERS: dict[str, Callable[[bytes], Any]] = {
    "string": lambda raw: raw.decode("utf-8"),
    "int": lambda raw: int.from_bytes(raw, "little", signed=True) if len(raw) == 4 else _undecodable(),
    "long": lambda raw: int.from_bytes(raw, "little", signed=True) if len(raw) == 8 else _undecodable(),
}


def _undecodable() -> Any:
    raise ValueError("a bound of the wrong width")


def _recorded(
    path: str,
    columns: Iterable[str],
    field_of: Callable[[str], tuple[int, Callable[[bytes], Any] | None]],
    lower: Mapping[int, bytes],
    upper: Mapping[int, bytes],
    nulls: Mapping[int, int],
    counts: Mapping[int, int],
) -> FileBounds:
    """The one rule for a manifest's bounds: a range when both bounds decode, empty when every value is null."""
    ranges: dict[str, tuple[Any, ...] | None] = {}
    nullable = set()
    for column in columns:
        fid: int | None = None
        try:
            fid, decode = field_of(column)
            if fid in lower and fid in upper and decode is not None:
                ranges[column] = (decode(lower[fid]), decode(upper[fid]))
            elif fid in counts and nulls.get(fid) == counts[fid]:
                ranges[column] = ()  # every value null
            else:
                ranges[column] = _ANY
        except Exception:  # noqa: BLE001 - a bound another writer left undecodable (a string cut mid-character)
            ranges[column], fid = _ANY, None
        if fid is None or nulls.get(fid) != 0:
            nullable.add(column)  # some rows null, or not recorded
    return FileBounds(path, ranges, frozenset(nullable))


def _may_be_null(meta: pq.FileMetaData, index: int) -> bool:
    for group in range(meta.num_row_groups):
        stats = meta.row_group(group).column(index).statistics
        if stats is None or not stats.has_null_count or stats.null_count > 0:
            return True
    return False


def _range(meta: pq.FileMetaData, index: int) -> tuple[Any, ...] | None:
    low: Any = None
    high: Any = None
    for group in range(meta.num_row_groups):
        chunk = meta.row_group(group).column(index)
        stats = chunk.statistics
        if stats is None:
            return _ANY
        if stats.has_min_max:
            low = stats.min if low is None or stats.min < low else low
            high = stats.max if high is None or stats.max > high else high
        elif not (stats.has_null_count and stats.null_count == chunk.num_values):
            return _ANY  # values, but no range written for them
    return () if low is None else (low, high)


def files_admitting(files: Sequence[FileBounds], **values: Sequence[Any]) -> list[str]:
    """The paths of the files that may hold, for every column named, one of its ``values``."""
    return [f.path for f in files if all(_admits(f.ranges.get(c, _ANY), v) for c, v in values.items())]


def _admits(bounds: tuple[Any, ...] | None, values: Sequence[Any]) -> bool:
    if bounds is None:
        return True
    if not bounds:
        return False
    low, high = bounds
    return any(v is not None and low <= v <= high for v in values)


def files_after(offsets: Mapping[str, SourceOffsets], applied: Mapping[str, Mapping[int, int]]) -> list[str]:
    """The paths of the event files holding an event after the ``applied`` offset of its source partition.

    ``offsets``: each file's highest offset per partition (``queries/event_file_offsets.sql``). What
    the holdings maintainer reads each refresh: the files stored since its last commit, not the
    whole history again. Per partition, not over the file: a consumer's commit writes several
    partitions into one file, whose offsets need not be alike (a partition added to the topic later
    starts at 0). A partition never applied has every event new.
    """
    return [
        path
        for path, highest in offsets.items()
        # a partition not applied reads as applied to -1: Kafka's offsets start at 0
        if highest is None or any(off > applied.get(o, {}).get(p, -1) for (o, p), off in highest.items())
    ]


def files_with_nulls(files: Sequence[FileBounds], column: str) -> list[str]:
    """The paths of the files that may hold a row where ``column`` is null."""
    return [f.path for f in files if column in f.nullable or column not in f.ranges]
