"""The store's Iceberg table: its columns (Arrow and Iceberg), properties, and the row buffer.

One table, ``<namespace>.events``, format v2, unpartitioned: a partition spec on a hash of the subject
cost a third or more of the ingest rate in measurements and multiplied the files per commit, while
files sorted by subject (what ``compact`` and the declared sort order give) already let a lookup
skip most row groups. Field ids are fixed here, so every engine that reads the table agrees on them.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lineage.contract.records import Record
from lineage.holdings.shards import shard_of

if TYPE_CHECKING:  # pyiceberg is imported when a table is opened: a reader of pinned files needs none of it
    from pyiceberg.schema import Schema
    from pyiceberg.table.sorting import SortOrder

__all__ = [
    "BUCKETS",
    "COLUMNS",
    "FLOWS_BUCKET",
    "FLOW_PROVENANCE",
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

EVENTS = "events"  # the table's name within the namespace
ERASURES = "erasures"  # the erasure certificates' table (``lineage.store.certificate``)
HOLDINGS = "holdings"  # the holdings table (``lineage.store.holdings``)

_STRING = pa.string()
_TS = pa.timestamp("us", tz="UTC")

# Flat columns: the record's fields with holder/recipient spread out, plus where each event came
# from: ``origin`` (the Kafka topic, or ``file.<name>`` for a backfill), its partition and offset,
# and how it reached Kafka, read from its headers (``lineage.transport.provenance``): ``sent_via``
# (sdk, gateway, openlineage), ``sent_via_name`` (SDK version, token name, job) and ``sent_via_run``
# (the OpenLineage run). Not ``via``: the holdings' ``via`` is the event that brought a holding.
# The provenance columns come last: a table made before them gets them added on open (``PROVENANCE``).
COLUMNS = pa.schema(
    [
        ("event_id", _STRING),
        ("event_type", _STRING),
        ("occurred_at", _TS),
        ("system", _STRING),
        ("system_region", _STRING),
        ("scope", _STRING),
        ("subject_id", _STRING),
        ("linked_subject_ids", pa.list_(_STRING)),
        ("subject_jurisdiction", _STRING),
        ("age_band", _STRING),
        ("categories", pa.list_(_STRING)),
        ("purpose", _STRING),
        ("legal_basis", _STRING),
        ("consent_ref", _STRING),
        ("consent_kind", _STRING),
        ("consent_status", _STRING),
        ("source", _STRING),
        ("holder_name", _STRING),
        ("holder_role", _STRING),
        ("holder_region", _STRING),
        ("recipient_name", _STRING),
        ("recipient_role", _STRING),
        ("recipient_region", _STRING),
        ("transfer_kind", _STRING),
        ("mechanism", _STRING),
        ("bulk_as_of", _TS),
        ("retention_days", pa.int32()),
        ("encrypted", pa.bool_()),
        ("erasure_outcome", _STRING),
        ("hold_reason", _STRING),
        ("origin", _STRING),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
        ("sent_via", _STRING),
        ("sent_via_name", _STRING),
        ("sent_via_run", _STRING),
    ]
)

#: the columns added after the table's first layout, in order: added to an older table when opened
PROVENANCE = ("sent_via", "sent_via_name", "sent_via_run")


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


TABLE_PROPERTIES = {
    "format-version": "2",
    # pyiceberg's own retry re-sends a stale set_properties and rewinds the stored offsets (it
    # double-stored rows in a test): conflicts must reach our loop, which re-checks the offsets
    "commit.retry.num-retries": "0",
    "write.parquet.compression-codec": "zstd",
    # small row groups: a subject's lookup reads few rows once files are sorted by subject
    "write.parquet.row-group-limit": "20000",
    "write.target-file-size-bytes": str(128 * 1024 * 1024),
    # every ingest commit adds a manifest; merging them keeps planning cheap as commits accumulate
    "commit.manifest-merge.enabled": "true",
    "commit.manifest.min-count-to-merge": "50",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "50",
}


LAYOUT = "3"  # the holdings rows' layout, raised whenever their meaning changes (2: buckets; 3: deltas and resets)
#: the holdings layouts this version reads: 2 has no ``gen`` (read as 0) and no resets, and a refresh brings it to 3
READS = ("2", LAYOUT)
#: the holdings table's partitions (its ``bucket`` column): runs by a hash of their subject into
#: ``BUCKETS``, so a refresh touching one subject rewrites 1/16 of them. Not more: pyiceberg's writer
#: passes over the rows once per partition written, and a batch of thousands of subjects touches every
#: bucket (measured at 1,000 subjects per seed organisation: 64 buckets cost 2.3 s of such passes per
#: refresh). Flows, identities and resets have a bucket each of their own.
BUCKETS = 16
FLOWS_BUCKET = -1
IDENTITY_BUCKET = -2
RESETS_BUCKET = -3

_PROV = [
    ("via_type", _STRING),
    ("via_bulk", pa.bool_()),
    ("holder_role", _STRING),
    ("holder_region", _STRING),
    ("source", _STRING),
    ("source_region", _STRING),
    ("purpose", _STRING),
    ("legal_basis", _STRING),
    ("mechanism", _STRING),
    ("retention_days", pa.int32()),
    ("encrypted", pa.bool_()),
]
#: the holdings table's rows (``lineage.store.holdings`` writes them, the answers' queries read them)
HOLDINGS_COLUMNS = pa.schema(
    [
        ("kind", _STRING),
        ("subject", _STRING),
        ("category", _STRING),
        ("holder", _STRING),  # a run's holder; a flow's recipient
        ("arrived_at", _TS),
        ("via", _STRING),
        ("flow", _STRING),
        ("first_seq", pa.int32()),  # a flow event's own number
        ("last_seq", pa.int32()),
        ("ended_at", _TS),
        ("ended_by", _STRING),
        *_PROV,  # a flow's: what it gives the runs it makes (source = its sender)
        ("categories", pa.list_(_STRING)),
        ("bulk_as_of", _TS),
        ("other", _STRING),
        ("bucket", pa.int32()),  # the partition (a hash of a run's subject; flows, identities: their own)
        ("gen", pa.int64()),  # the commit that wrote the row (null: 0); a reset of its subject above it drops it
    ]
)
#: a flow row's provenance columns, in their order (the holdings writer fills them from a flow's ``prov``)
FLOW_PROVENANCE = tuple(_PROV)


def bucket_of(subject: str) -> int:
    """The bucket of a subject's runs."""
    return shard_of(subject, BUCKETS)


def buckets_of(subjects: list[str]) -> list[int]:
    """The buckets of these subjects' runs: what lets a lookup read their files alone (the holdings macro)."""
    return sorted({bucket_of(s) for s in subjects})


def offset_key(origin: str, partition: int) -> str:
    """The table property holding the last stored offset of one source partition."""
    return f"lineage.offset.{origin}.{partition}"


# events table property: events (consents, holds aside) before this time (µs) left the table (lineage.store.retention)
RETAINED_BEFORE = "lineage.retention.before"


def retained_before(properties: Mapping[str, str]) -> int | None:
    """The retention cut-off (microseconds since the epoch) recorded in an events table's ``properties``."""
    raw = properties.get(RETAINED_BEFORE)
    return int(raw) if raw else None


def owner_key(origin: str, partition: int) -> str:
    """The table property naming the writer that owns one source partition: ``<epoch>:<member>``."""
    return f"lineage.owner.{origin}.{partition}"


def owner_epoch(value: str | None) -> int:
    """The epoch of an ``owner_key`` property's value (0 when no writer has claimed the partition)."""
    return int(value.split(":", 1)[0]) if value else 0


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
