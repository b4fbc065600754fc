"""A key's few rows read with pyarrow from the row groups that may hold them, not through a DuckDB query.

A person's answer starts with lookups of a few rows each: an identifier's person key, the person's
links (three or four narrow columns of the identity bucket), then their runs (21 columns of their
bucket). Through DuckDB each paid its binding and planning and ~8 us for every row group of the
file: 3.7-4.2 ms an identity lookup, 12 ms a person's runs (their linked ids' too) at 1M subjects.
pyarrow reads the one group a key lies in: 0.7 ms an identity lookup at the 5,000 rows a group of
the identity bucket (``holdings.IDENTITY_ROW_GROUP``), ~7 ms a person's runs at the 10,000 of the
others (``holdings.ROW_GROUP``; measured 2026-12-07). A person's events stay DuckDB's: their files
are written in groups of 20,000 by every writer of the events table, and DuckDB decodes many
columns of those faster than pyarrow does (6.0 against 7.7 ms).

A row group is read when its statistics admit the key, or when it has none or one that does not
decode: the rule ``file_bounds`` applies to whole files. Values come as the queries give them:
times as instants in ``datetime.UTC`` (nanoseconds rounded as DuckDB rounds them), text as ``str``.
A file this cannot read as DuckDB's view does raises ``NotPointReadable``, and the caller asks the
query: a column missing (an older layout), or of another type than the table's (text stored as
unannotated bytes, a number as a decimal or text, a time without a zone: the view casts those to
the table's types), or a time past 9999. Text stored in Parquet v2's delta
encodings is read, only not into dictionaries. Each file's footer is read once per ``PointReader``,
which lives as long as the connection of one snapshot (``engine._Reader``). Local files only: on S3
each row group would be a request of its own, and DuckDB's reads there are already batched.
"""
from __future__ import annotations

import bisect
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from lineage.store.catalog import StoreLocation, read_error
from lineage.store.layout import HOLDING_FIELDS

if TYPE_CHECKING:  # a process that never looks a person up imports no pyarrow for this
    import pyarrow.parquet as pq

__all__ = ["NotPointReadable", "PointReader"]

_Range = tuple[Any, Any] | tuple[()] | None  # a row group's (min, max); () no value; None: unbounded
# a file's footer, each group's range of the key columns, the columns whose type is the table's, and
# the flat text ones (each with its leaf's index)
_Footer = tuple["pq.FileMetaData", dict[str, list[_Range]], frozenset[str], dict[str, int]]
# the encodings pyarrow can read into a dictionary (not the DELTA ones of Parquet v2 writers)
_DICTIONARY_SAFE = frozenset({"PLAIN", "RLE", "BIT_PACKED", "PLAIN_DICTIONARY", "RLE_DICTIONARY"})


class NotPointReadable(Exception):
    """A file whose rows the point read cannot give as DuckDB's view gives them: ask the query instead."""


class PointReader:
    """Rows of one key from a snapshot's local Parquet files, their footers read once."""

    def __init__(self, location: StoreLocation, fields: Sequence[tuple[str, str]] = HOLDING_FIELDS) -> None:
        """Read the files of the store at ``location`` (named in the errors), of a table of ``fields``.

        A file whose column has another type than the field's (text stored as unannotated bytes,
        a number as a decimal, a zone-less time) is ``NotPointReadable``: DuckDB's view casts it
        to the table's type, which is the query's to say.
        """
        self._location = location
        self._kinds = dict(fields)
        self._footers: dict[str, _Footer] = {}
        self._lock = threading.Lock()

    def rows(
        self,
        files: Sequence[str],
        equal: Mapping[str, Any],
        columns: Sequence[str],
        known: Callable[[str], pq.FileMetaData | None] = lambda path: None,
    ) -> list[dict[str, Any]]:
        """The ``columns`` of every row of ``files`` whose columns equal ``equal``'s values.

        Only the row groups whose statistics admit every one of those values are read. Timestamps
        come zoned in ``datetime.UTC``, as ``Session.lookup`` gives them. ``known``: a file's footer
        if already read (``engine.Footers`` checked it), else None.

        The rows are matched in Python, not by ``pyarrow.compute``: its import alone is ~30 ms of a
        ``lineage access`` process, and over a group of 5,000 rows its kernels were no faster.
        """
        import pyarrow.parquet as pq

        found: list[dict[str, Any]] = []
        wanted = list(equal.items())
        rest = [c for c in columns if c not in equal]
        for path in files:
            try:
                meta, ranges, typed, texts = self._footer(path, list(equal), known)
                if not typed.issuperset(columns) or not typed.issuperset(equal):
                    raise NotPointReadable(path)  # missing (the view gives NULL, or fails) or of another type
                groups = _groups_admitting(ranges, wanted)
                if not groups:
                    continue
                # text read as dictionaries: a group's other columns decoded in 2.4 against 3.2 ms
                # (10,000 rows), and only the few matching rows are turned into Python values
                dictionaries = [c for c in rest if c in texts and _dictionary_pages(meta, groups, texts[c])]
                with pq.ParquetFile(
                    path, metadata=meta, coerce_int96_timestamp_unit="us", read_dictionary=dictionaries
                ) as parquet:
                    # many columns: the key columns first. An identifier within a group's bounds often
                    # has no row there (a device id has no runs), and the group's other columns then go
                    # unread. A few (an identity lookup's): one read, a second cost more than it spared
                    narrow = len(rest) <= _NARROW
                    asked = list(dict.fromkeys([*equal, *rest])) if narrow else list(equal)
                    keys = parquet.read_row_groups(groups, columns=asked, use_threads=False)
                    matching = _matching(keys, wanted)
                    if not matching:
                        continue
                    at: Callable[[int], int] = _same
                    others: Any = keys
                    if not narrow:
                        needed, at = _groups_of(matching, groups, [meta.row_group(g).num_rows for g in groups])
                        others = parquet.read_row_groups(needed, columns=rest, use_threads=False) if rest else None
            except UnicodeDecodeError:  # text stored as bytes that are not UTF-8: DuckDB refuses it too
                raise _file_error(ValueError("not UTF-8"), path, self._location) from None
            except NotPointReadable:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever pyarrow says, the file is at fault
                raise _file_error(exc, path, self._location) from None
            try:
                for start, stop in _spans(matching):  # a key's rows lie together in a sorted file
                    pieces = [
                        keys.slice(start, stop - start).column(c) if c in equal
                        else others.slice(at(start), stop - start).column(c)
                        for c in columns
                    ]  # fmt: skip
                    found.extend(
                        dict(zip(columns, row, strict=True)) for row in zip(*map(_values, pieces), strict=True)
                    )
            except UnicodeDecodeError:
                raise _file_error(ValueError("not UTF-8"), path, self._location) from None
            except OverflowError:  # a time past 9999 (DuckDB's infinity): the query compares it unconverted
                raise NotPointReadable(path) from None
        return found

    def _footer(self, path: str, columns: list[str], read: Callable[[str], pq.FileMetaData | None]) -> _Footer:
        """The file's footer, each group's range of ``columns``, the names of its columns and of its flat text ones."""
        with self._lock:
            known = self._footers.get(path)
        if known is not None and all(c in known[1] for c in columns):
            return known
        import pyarrow.parquet as pq

        meta = known[0] if known is not None else read(path)
        if meta is None:
            meta = pq.read_metadata(path)
        leaves = [meta.schema.column(i) for i in range(meta.num_columns)]
        paths = [leaf.path for leaf in leaves]
        ranges = dict(known[1]) if known is not None else {}
        for column in columns:
            index = paths.index(column) if column in paths else None
            ranges[column] = [_group_range(meta, group, index) for group in range(meta.num_row_groups)]
        schema = meta.schema.to_arrow_schema()
        typed = frozenset(f.name for f in schema if f.name in self._kinds and _fits(self._kinds[f.name], f.type))
        # read as dictionaries: only text columns not nested (pyarrow wants a list's leaf path)
        texts = {
            leaf.path: i for i, leaf in enumerate(leaves) if leaf.physical_type == "BYTE_ARRAY" and "." not in leaf.path
        }
        found = (meta, ranges, typed, texts)
        with self._lock:
            self._footers[path] = found
        return found


def _fits(kind: str, arrow: Any) -> bool:
    """Whether a file's column of Arrow type ``arrow`` reads as the table's ``kind`` with no cast DuckDB would make."""
    import pyarrow as pa

    if pa.types.is_dictionary(arrow):
        arrow = arrow.value_type
    if kind == "string":
        return bool(pa.types.is_string(arrow) or pa.types.is_large_string(arrow) or pa.types.is_string_view(arrow))
    if kind in ("int32", "int64"):
        return bool(pa.types.is_signed_integer(arrow)) and arrow.bit_width <= (32 if kind == "int32" else 64)
    if kind == "bool":
        return bool(pa.types.is_boolean(arrow))
    if kind == "timestamp":
        return bool(pa.types.is_timestamp(arrow)) and arrow.tz is not None
    if kind == "list<string>":
        return bool(pa.types.is_list(arrow) or pa.types.is_large_list(arrow)) and _fits("string", arrow.value_type)
    return False


def _dictionary_pages(meta: pq.FileMetaData, groups: list[int], index: int) -> bool:
    """Whether the column at ``index`` is stored in ``groups`` in encodings pyarrow reads into a dictionary."""
    return all(_DICTIONARY_SAFE.issuperset(meta.row_group(g).column(index).encodings) for g in groups)


def _groups_admitting(ranges: Mapping[str, list[_Range]], wanted: list[tuple[str, Any]]) -> list[int]:
    """The row groups whose ranges admit every wanted value: unbounded ones, and those each value falls within.

    The first column (the key) narrows the groups in one pass, the others test only those left.
    """
    groups: list[int] | None = None
    for column, value in wanted:
        bounds = ranges[column]
        candidates = range(len(bounds)) if groups is None else groups
        groups = [g for g in candidates if (b := bounds[g]) is None or (len(b) == 2 and b[0] <= value <= b[1])]
    return groups or []


def _group_range(meta: pq.FileMetaData, group: int, index: int | None) -> _Range:
    """One row group's range of the column at ``index`` (None: the file lacks it, every value null)."""
    if index is None:
        return ()
    chunk = meta.row_group(group).column(index)
    stats = chunk.statistics
    if stats is None:
        return None
    if stats.has_min_max:
        try:
            return (_text(stats.min), _text(stats.max))
        except (UnicodeDecodeError, ValueError):
            # a writer that shortens long bounds may cut one mid-character (DuckDB, arrow-rs,
            # Trino): still a bound byte by byte, but not text; pyarrow cannot decode it
            return None
    if stats.has_null_count and stats.null_count == chunk.num_values:
        return ()
    return None  # values, but no range written for them


def _text(value: Any) -> Any:
    """Text stored as plain bytes (no UTF-8 annotation: Impala, imported Hive files) as the ``str`` DuckDB reads."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _texts(column: Any) -> list[Any]:
    """A string column's values, as ``str`` whether stored annotated or as bytes."""
    import pyarrow as pa

    values: list[Any] = column.to_pylist()
    kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind):
        return [_text(v) for v in values]
    return values


_NARROW = 3  # columns besides the keys read with them in one pass (``rows``)


def _same(row: int) -> int:
    return row


def _matching(keys: Any, wanted: list[tuple[str, Any]]) -> list[int]:
    """The rows of ``keys`` whose columns equal every wanted value, in order."""
    matching: Sequence[int] = range(keys.num_rows)
    for column, value in wanted:
        values = _texts(keys.column(column))
        matching = [i for i in matching if values[i] == value]
    return list(matching)


def _groups_of(
    rows: list[int], groups: list[int], sizes: list[int]
) -> tuple[list[int], Callable[[int], int]]:
    """The groups holding ``rows`` (numbered over ``groups`` read one after another, of ``sizes`` rows).

    And where each such row lies once only those groups are read.
    """
    starts = [0]
    for size in sizes:
        starts.append(starts[-1] + size)
    holding = sorted({bisect.bisect_right(starts, r) - 1 for r in rows})
    shift: dict[int, int] = {}
    offset = 0
    for k in holding:
        shift[k] = starts[k] - offset
        offset += sizes[k]
    return [groups[k] for k in holding], lambda row: row - shift[bisect.bisect_right(starts, row) - 1]


def _spans(indices: Sequence[int]) -> list[tuple[int, int]]:
    """Ascending row numbers as the half-open ranges of consecutive ones."""
    spans: list[tuple[int, int]] = []
    for i in indices:
        if spans and spans[-1][1] == i:
            spans[-1] = (spans[-1][0], i + 1)
        else:
            spans.append((i, i + 1))
    return spans


def _values(column: Any) -> list[Any]:
    """A column's values as the lookup queries give them: text as ``str``, a time as a ``datetime`` in ``datetime.UTC``.

    A time stored without a zone (or as INT96, as migrated Spark and Hive files hold them) is an instant
    in UTC, as DuckDB reads it into the table's zoned type (its time zone is UTC); taken from the
    integers (a view of the column, no copy), so a nanosecond one does not come back as a pandas ``Timestamp``.
    """
    import pyarrow as pa

    if not pa.types.is_timestamp(column.type):
        return _texts(column)
    unit = column.type.unit
    out: list[Any] = []
    for chunk in column.chunks:
        for value in chunk.view(pa.int64()).to_pylist():
            if value is None:
                out.append(None)
                continue
            if unit == "ns":  # as DuckDB casts ns to its microseconds: to the nearest, halves away from zero
                q, r = divmod(abs(value), 1000)
                micros = (q + (r >= 500)) * (1 if value >= 0 else -1)
            else:
                micros = value * _PER_MICRO[unit]
            out.append(_EPOCH + timedelta(microseconds=micros))
    return out


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PER_MICRO = {"s": 1_000_000, "ms": 1000, "us": 1}


def _file_error(exc: BaseException, path: str, location: StoreLocation) -> Exception:
    """The store's one-line error for a file that did not read: gone, refused, or not decoding."""
    name = os.path.basename(path)
    if isinstance(exc, PermissionError):
        return read_error(exc, location, "reading the data files")
    failure = ValueError(f"{name}: unreadable") if os.path.exists(path) else FileNotFoundError(name)
    return read_error(failure, location, "reading the data files")
