"""The holdings table computed by Apache Spark: the same engine on subject shards, for when one machine is outgrown.

``build_holdings(spark, events, holdings, shards=K)`` reads one snapshot of the events table through
Spark's Iceberg catalog and writes the holdings rows (``HOLDINGS_COLUMNS``) to an Iceberg table:

1. ``mapInArrow`` routes each event (``lineage.holdings.shards``): a subject-level event to its
   subject's shard, a bulk event (a flow, a bulk erasure) to every shard;
2. ``groupBy(shard).applyInArrow`` runs ``HoldingsEngine`` on each shard's events in event-time order
   and keeps its runs and link edges; shard 0 alone keeps the flow events (every shard has the same);
3. one task merges the link edges and computes the person keys (they join identifiers across shards);
4. the rows replace the target table's in one commit, with the events snapshot they reflect and the
   watermark as table properties, partitioned by ``bucket`` as the maintainer's table is (the rows
   carry it: ``holdings_arrow`` computes it, the same hash as the shards').

An events table that store retention (``lineage retain``) has run on is refused: its events before
the cut-off are gone, and only the maintainer's stored holdings keep what they made.

Arrow record batches go between the JVM and Python (no pandas frames, no pickled rows): a shard
costs what the maintainer's one engine costs for its share of the subjects. pyspark is imported
here only, and only inside functions (``lint-imports``); the executors need ``lineage`` importable
(installed, or shipped with ``addPyFile``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from lineage.errors import ConfigurationError, StoreNotFoundError
from lineage.holdings import HoldingsEngine, Link, event_from_row
from lineage.holdings.shards import merge_links, shards_for
from lineage.store.holdings import HELD, HOLDINGS, HOLDINGS_COLUMNS, SOURCE, WATERMARK, holdings_arrow
from lineage.store.tables import retained_before

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["SparkHoldings", "build_holdings"]

# the columns ``queries/holdings_events.sql`` gives the engine, times as microseconds
_EVENT_COLUMNS = [
    "event_id", "event_type", "unix_micros(occurred_at) AS occurred_at", "scope", "subject_id", "linked_subject_ids",
    "categories", "holder_name", "holder_role", "holder_region", "recipient_name", "recipient_role",
    "recipient_region", "purpose", "legal_basis", "mechanism", "retention_days", "encrypted", "source",
    "unix_micros(bulk_as_of) AS bulk_as_of", "erasure_outcome",
]  # fmt: skip
_WANTED = "event_type IN ('COLLECTED', 'SHARED', 'TRANSFERRED', 'ERASED') OR size(linked_subject_ids) > 0"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){1,2}")
_SPARK_TYPES = {pa.string(): "string", pa.bool_(): "boolean", pa.int32(): "int", pa.int64(): "bigint"}


@dataclass(frozen=True, slots=True)
class SparkHoldings:
    """What one Spark build read and wrote."""

    source: int | None  # the events snapshot read (None: the table had none)
    watermark: int | None  # the latest event time applied (microseconds)
    shards: int


def build_holdings(spark: SparkSession, events: str, holdings: str, *, shards: int) -> SparkHoldings:
    """Compute the holdings of the events table ``events`` on ``shards`` shards into the table ``holdings``.

    Both names are ``catalog.namespace.table`` (or ``namespace.table`` in the session's catalog).
    """
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F
    from pyspark.sql.types import IntegerType, StructField, StructType

    for setting, name in (("events", events), ("holdings", holdings)):
        if not _NAME.fullmatch(name):
            raise ConfigurationError(setting, "a table name is two or three dotted names of letters, digits, '_'")
    if holdings.rpartition(".")[2] == HOLDINGS:
        # the maintainer continues from its table's offsets, which this job does not record
        raise ConfigurationError("holdings", f"'{HOLDINGS}' is the maintainer's table; name a table of its own")
    if shards < 1:
        raise ConfigurationError("shards", f"{shards} is not a positive number of shards")
    try:
        refs = spark.table(f"{events}.refs").where(F.col("name") == "main").select("snapshot_id").collect()
    except AnalysisException:
        raise StoreNotFoundError(f"Spark's catalog has no events table {events}", path=events) from None
    kept_props: dict[str, str] = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {events}").collect()}
    if retained_before(kept_props) is not None:
        # the events before the cut-off are gone: only the maintainer's stored holdings keep what they made
        raise ConfigurationError(
            "events", f"{events} had events retired by `lineage retain`: a build from the kept events alone would "
            "lose the holdings they made; use `lineage holdings --rebuild`, which starts from the stored holdings",
        )  # fmt: skip
    source = int(refs[0]["snapshot_id"]) if refs else None
    reader = spark.read
    if source is not None:  # one snapshot, the one the properties name, however many commits follow
        reader = reader.option("versionAsOf", str(source))  # Iceberg 1.12 refuses its own "snapshot-id"
    table = reader.table(events).where(_WANTED).selectExpr(*_EVENT_COLUMNS)
    routed = table.mapInArrow(_router(shards), StructType([*table.schema.fields, StructField("shard", IntegerType())]))
    rows = routed.groupBy("shard").applyInArrow(_shard_rows, _ddl(HOLDINGS_COLUMNS)).cache()
    # one group, one task: every edge in one place
    links = rows.where("kind = 'link'").groupBy("kind").applyInArrow(_links_and_persons, _ddl(HOLDINGS_COLUMNS))
    watermark = table.agg(F.max("occurred_at").alias("at")).collect()[0]["at"]
    # clustered by bucket in each task: Iceberg's writer then opens one file per bucket at a time
    out = rows.where("kind <> 'link'").unionByName(links).sortWithinPartitions("bucket", "kind", "subject")
    properties = {
        SOURCE: "" if source is None else str(source),
        WATERMARK: "" if watermark is None else str(watermark),
        HELD: "",  # every event of ``source``: a maintainer's holdback before is over
    }
    writer = (
        out.writeTo(holdings).using("iceberg").partitionedBy(F.col("bucket")).tableProperty("format-version", "2")
    )
    for key, value in properties.items():
        writer = writer.tableProperty(key, value)
    try:
        writer.createOrReplace()
    finally:
        rows.unpersist()
    return SparkHoldings(source, None if watermark is None else int(watermark), shards)


def _router(shards: int) -> Any:
    """A ``mapInArrow`` function that copies each event to the shards it goes to, with a ``shard`` column."""

    def route(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            taken: list[int] = []
            to: list[int] = []
            scopes = batch.column("scope").to_pylist()
            subjects = batch.column("subject_id").to_pylist()
            for i, (scope, subject) in enumerate(zip(scopes, subjects, strict=True)):
                for shard in shards_for(scope, subject, shards):
                    taken.append(i)
                    to.append(shard)
            copied = batch.take(pa.array(taken, pa.int64()))
            yield pa.RecordBatch.from_arrays(
                [*copied.columns, pa.array(to, pa.int32())], names=[*batch.schema.names, "shard"]
            )

    return route


def _shard_rows(table: pa.Table) -> pa.Table:
    """One shard's engine over its events: its runs and link edges, and (shard 0) the flow events."""
    shard = table.column("shard")[0].as_py()
    engine = HoldingsEngine()
    engine.apply(event_from_row(row) for row in table.drop_columns(["shard"]).to_pylist())
    rows = holdings_arrow(engine)
    kinds = ["run", "link", "flow"] if shard == 0 else ["run", "link"]  # person keys: from all links, later
    return rows.filter(pc.is_in(rows.column("kind"), pa.array(kinds)))


def _links_and_persons(table: pa.Table) -> pa.Table:
    """Every shard's link edges, one per pair, and the person key of every linked identifier."""
    at = table.column("arrived_at").cast(pa.int64()).to_pylist()
    edges = [Link(a, b, t) for a, b, t in zip(table.column("via").to_pylist(), table.column("other").to_pylist(),
                                               at, strict=True)]  # fmt: skip
    # an engine of links alone: its rows are the merged edges and every identifier's person key
    return holdings_arrow(HoldingsEngine.restore((), (), merge_links(edges), None))


def _ddl(schema: pa.Schema) -> str:
    """Spark's DDL for an Arrow schema of strings, booleans, integers, UTC timestamps and string lists."""
    parts = []
    for f in schema:
        if pa.types.is_timestamp(f.type):
            kind = "timestamp"
        elif pa.types.is_list(f.type):
            kind = f"array<{_SPARK_TYPES[f.type.value_type]}>"
        else:
            kind = _SPARK_TYPES[f.type]
        parts.append(f"{f.name} {kind}")
    return ", ".join(parts)
