"""The store's Iceberg table: its columns (Arrow and Iceberg), properties, and the row buffer.

One table, ``<namespace>.events``, format v2, unpartitioned: a partition spec on a hash of the subject
cost a third or more of the ingest rate in measurements and multiplied the files per commit, while
files sorted by subject (what ``compact`` and the declared sort order give) already let a lookup
skip most row groups. Field ids are fixed here, so every engine that reads the table agrees on them.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lineage.contract.records import Record
from lineage.store.layout import (
    BUCKETS,
    ERASURES,
    EVENT_FIELDS,
    EVENTS,
    FLOW_PROVENANCE_FIELDS,
    FLOWS_BUCKET,
    HOLDING_FIELDS,
    HOLDINGS,
    IDENTITY_BUCKET,
    LAYOUT,
    PROVENANCE,
    READS,
    RESETS_BUCKET,
    RETAINED_BEFORE,
    TABLE_PROPERTIES,
    bucket_of,
    buckets_of,
    offset_key,
    owner_epoch,
    owner_key,
    retained_before,
)

if TYPE_CHECKING:  # pyiceberg is imported when a table is opened: a reader of pinned files needs none of it
    from pyiceberg.schema import Schema
    from pyiceberg.table.sorting import SortOrder

__all__ = [
    "BUCKETS",
    "COLUMNS",
    "FLOWS_BUCKET",
    "FLOW_PROVENANCE",
    "HOLDINGS",
    "HOLDINGS_COLUMNS",
    "IDENTITY_BUCKET",
    "LAYOUT",
    "READS",
    "RESETS_BUCKET",
    "ERASURES",
    "EVENTS",
    "RETAINED_BEFORE",
    "PROVENANCE",
    "SentVia",
    "TABLE_PROPERTIES",
    "ColumnBuffer",
    "arrow_schema",
    "ascending",
    "bucket_of",
    "buckets_of",
    "events_schema",
    "events_sort_order",
    "iceberg_schema",
    "offset_key",
    "owner_epoch",
    "owner_key",
    "retained_before",
]

_STRING = pa.string()
_TS = pa.timestamp("us", tz="UTC")

_ARROW = {
    "string": _STRING,
    "timestamp": _TS,
    "int32": pa.int32(),
    "int64": pa.int64(),
    "bool": pa.bool_(),
    "list<string>": pa.list_(_STRING),
}


def arrow_schema(fields: Sequence[tuple[str, str]]) -> pa.Schema:
    """The Arrow schema of columns given as (name, kind) (``lineage.store.layout``)."""
    return pa.schema([(name, _ARROW[kind]) for name, kind in fields])


#: the events table's columns (``layout.EVENT_FIELDS``)
COLUMNS = arrow_schema(EVENT_FIELDS)


def iceberg_schema(columns: pa.Schema) -> Schema:
    """The Iceberg schema of ``columns``: every field optional, ids 1..n, list elements from 1000."""
    from pyiceberg.schema import Schema
    from pyiceberg.types import (
        BooleanType,
        IcebergType,
        IntegerType,
        ListType,
        LongType,
        NestedField,
        StringType,
        TimestamptzType,
    )

    scalar: dict[pa.DataType, IcebergType] = {
        _STRING: StringType(),
        _TS: TimestamptzType(),
        pa.int32(): IntegerType(),
        pa.int64(): LongType(),
        pa.bool_(): BooleanType(),
    }
    fields = []
    for i, f in enumerate(columns, start=1):
        if pa.types.is_list(f.type):
            kind: IcebergType = ListType(element_id=1000 + i, element_type=StringType(), element_required=False)
        else:
            kind = scalar[f.type]
        fields.append(NestedField(field_id=i, name=f.name, field_type=kind, required=False))
    return Schema(*fields)


@cache
def events_schema() -> Schema:
    """The events table's Iceberg schema (``COLUMNS``)."""
    return iceberg_schema(COLUMNS)


@cache
def events_sort_order() -> SortOrder:
    """What compaction writes and what Spark's rewrite_data_files(strategy => 'sort') uses: subject, then offset."""
    return ascending(events_schema(), ("subject_id", "kafka_offset"))


def ascending(schema: Schema, names: Sequence[str]) -> SortOrder:
    """The sort order of ``schema``'s columns ``names``, each ascending with nulls first."""
    from pyiceberg.table.sorting import NullOrder, SortDirection, SortField, SortOrder
    from pyiceberg.transforms import IdentityTransform

    fields = (
        SortField(source_id=schema.find_field(name).field_id, transform=IdentityTransform(),
                  direction=SortDirection.ASC, null_order=NullOrder.NULLS_FIRST)
        for name in names
    )  # fmt: skip
    return SortOrder(*fields)


#: the holdings table's rows (``layout.HOLDING_FIELDS``)
HOLDINGS_COLUMNS = arrow_schema(HOLDING_FIELDS)
#: a flow row's provenance columns and their Arrow types, in their order
FLOW_PROVENANCE = tuple((name, _ARROW[kind]) for name, kind in FLOW_PROVENANCE_FIELDS)


_ROW_FIELDS = (
    *(
        name
        for name in COLUMNS.names
        if not name.startswith(("holder_", "recipient_", "kafka_", "origin")) and name not in PROVENANCE
    ),
    "holder",
    "recipient",
)
_ROW = operator.itemgetter(*_ROW_FIELDS)
#: one row's ``PROVENANCE`` columns: door, name, run (None where unknown)
SentVia = tuple[str | None, str | None, str | None]
_PARTY = pa.struct([("name", _STRING), ("role", _STRING), ("region", _STRING)])
# a buffered row as one struct: pyarrow converts a list of tuples to it in one C pass, parties
# (dicts) included, about twice as fast as transposing the rows in Python and converting each column
_ROW_TYPE = pa.struct([pa.field(n, _PARTY) if n in ("holder", "recipient") else COLUMNS.field(n) for n in _ROW_FIELDS])


class ColumnBuffer:
    """Collects records as tuples (one C-level ``itemgetter`` call each) and turns them into columns once."""

    __slots__ = ("_offsets", "_provenance", "_rows")

    def __init__(self) -> None:
        """Start empty."""
        self._rows: list[tuple[Any, ...]] = []
        self._offsets: list[int] = []
        self._provenance: list[SentVia] = []

    @property
    def rows(self) -> int:
        """How many rows are buffered."""
        return len(self._rows)

    def append(self, record: Record, offset: int, sent_via: SentVia = (None, None, None)) -> None:
        """Add one validated record, its offset and how it reached Kafka (the ``PROVENANCE`` columns)."""
        self._rows.append(_ROW(record))
        self._offsets.append(offset)
        self._provenance.append(sent_via)

    def count_above(self, offset: int) -> int:
        """How many rows have an offset above ``offset``."""
        if not self._offsets or self._offsets[0] > offset:
            return len(self._offsets)
        return sum(1 for o in self._offsets if o > offset)

    def table(self, origin: str, partition: int, *, after: int = -1) -> pa.Table:
        """The rows whose offset is above ``after`` as an Arrow table in ``COLUMNS`` order."""
        rows, offsets, provenance = self._rows, self._offsets, self._provenance
        if after >= 0 and offsets and offsets[0] <= after:
            kept = [i for i, o in enumerate(offsets) if o > after]
            rows, offsets = [rows[i] for i in kept], [offsets[i] for i in kept]
            provenance = [provenance[i] for i in kept]
        columns: dict[str, Any] = dict(zip(_ROW_FIELDS, pa.array(rows, _ROW_TYPE).flatten(), strict=True))
        # parties split into flat columns (flatten keeps a null recipient null in each part)
        for party in ("holder", "recipient"):
            struct = columns.pop(party).flatten()
            for i, part in enumerate(("name", "role", "region")):
                columns[f"{party}_{part}"] = struct[i]
        n = len(offsets)
        columns["origin"] = pa.repeat(pa.scalar(origin, _STRING), n)
        columns["kafka_partition"] = pa.repeat(pa.scalar(partition, pa.int32()), n)
        columns["kafka_offset"] = pa.array(offsets, pa.int64())
        for name, values in zip(PROVENANCE, zip(*provenance, strict=True) if n else ((), (), ()), strict=True):
            columns[name] = pa.array(values, _STRING)
        return pa.table([columns[f.name] for f in COLUMNS], schema=COLUMNS)
