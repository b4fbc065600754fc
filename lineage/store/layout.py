"""The store's tables as plain data: their names, columns, buckets and properties (no pyarrow).

``lineage.store.tables`` builds the Arrow and Iceberg schemas from the columns here. A reader of
the files (DuckDB's views over them, ``lineage.store.engine``) needs these alone, and imports
pyarrow (~60 ms with numpy) only where it reads Arrow or checks a footer.

A column's type is one of ``KINDS``: ``string``, ``timestamp`` (µs, UTC), ``int32``, ``int64``,
``bool``, ``list<string>``.
"""

from __future__ import annotations

from collections.abc import Mapping

from lineage.holdings.shards import shard_of

__all__ = [
    "BUCKETS",
    "ERASURES",
    "EVENTS",
    "EVENT_FIELDS",
    "FLOWS_BUCKET",
    "FLOW_PROVENANCE_FIELDS",
    "HOLDINGS",
    "HOLDING_FIELDS",
    "IDENTITY_BUCKET",
    "KINDS",
    "LAYOUT",
    "PROVENANCE",
    "READS",
    "RESETS_BUCKET",
    "RETAINED_BEFORE",
    "TABLE_PROPERTIES",
    "bucket_of",
    "buckets_of",
    "offset_key",
    "owner_epoch",
    "owner_key",
    "retained_before",
]

EVENTS = "events"  # the table's name within the namespace
ERASURES = "erasures"  # the erasure certificates' table (``lineage.store.certificate``)
HOLDINGS = "holdings"  # the holdings table (``lineage.store.holdings``)

#: each column type's name in DuckDB
KINDS = {
    "string": "VARCHAR",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "bool": "BOOLEAN",
    "list<string>": "VARCHAR[]",
}

# Flat columns: the record's fields with holder/recipient spread out, plus where each event came
# from: ``origin`` (the Kafka topic, or ``file.<name>`` for a backfill), its partition and offset,
# and how it reached Kafka, read from its headers (``lineage.transport.provenance``): ``sent_via``
# (sdk, gateway, openlineage), ``sent_via_name`` (SDK version, token name, job) and ``sent_via_run``
# (the OpenLineage run). Not ``via``: the holdings' ``via`` is the event that brought a holding.
# The provenance columns come last: a table made before them gets them added on open (``PROVENANCE``).
EVENT_FIELDS: tuple[tuple[str, str], ...] = (
    ("event_id", "string"),
    ("event_type", "string"),
    ("occurred_at", "timestamp"),
    ("system", "string"),
    ("system_region", "string"),
    ("scope", "string"),
    ("subject_id", "string"),
    ("linked_subject_ids", "list<string>"),
    ("subject_jurisdiction", "string"),
    ("age_band", "string"),
    ("categories", "list<string>"),
    ("purpose", "string"),
    ("legal_basis", "string"),
    ("consent_ref", "string"),
    ("consent_kind", "string"),
    ("consent_status", "string"),
    ("source", "string"),
    ("holder_name", "string"),
    ("holder_role", "string"),
    ("holder_region", "string"),
    ("recipient_name", "string"),
    ("recipient_role", "string"),
    ("recipient_region", "string"),
    ("transfer_kind", "string"),
    ("mechanism", "string"),
    ("bulk_as_of", "timestamp"),
    ("retention_days", "int32"),
    ("encrypted", "bool"),
    ("erasure_outcome", "string"),
    ("hold_reason", "string"),
    ("origin", "string"),
    ("kafka_partition", "int32"),
    ("kafka_offset", "int64"),
    ("sent_via", "string"),
    ("sent_via_name", "string"),
    ("sent_via_run", "string"),
)

#: the columns added after the table's first layout, in order: added to an older table when opened
PROVENANCE = ("sent_via", "sent_via_name", "sent_via_run")

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

#: a flow row's provenance columns, in their order (the holdings writer fills them from a flow's ``prov``)
FLOW_PROVENANCE_FIELDS: tuple[tuple[str, str], ...] = (
    ("via_type", "string"),
    ("via_bulk", "bool"),
    ("holder_role", "string"),
    ("holder_region", "string"),
    ("source", "string"),
    ("source_region", "string"),
    ("purpose", "string"),
    ("legal_basis", "string"),
    ("mechanism", "string"),
    ("retention_days", "int32"),
    ("encrypted", "bool"),
)
#: the holdings table's rows (``lineage.store.holdings`` writes them, the answers' queries read them)
HOLDING_FIELDS: tuple[tuple[str, str], ...] = (
    ("kind", "string"),
    ("subject", "string"),
    ("category", "string"),
    ("holder", "string"),  # a run's holder; a flow's recipient
    ("arrived_at", "timestamp"),
    ("via", "string"),
    ("flow", "string"),
    ("first_seq", "int32"),  # a flow event's own number
    ("last_seq", "int32"),
    ("ended_at", "timestamp"),
    ("ended_by", "string"),
    *FLOW_PROVENANCE_FIELDS,  # a flow's: what it gives the runs it makes (source = its sender)
    ("categories", "list<string>"),
    ("bulk_as_of", "timestamp"),
    ("other", "string"),
    ("bucket", "int32"),  # the partition (a hash of a run's subject; flows, identities: their own)
    ("gen", "int64"),  # the commit that wrote the row (null: 0); a reset of its subject above it drops it
)


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
