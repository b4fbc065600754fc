"""The lineage store: one Apache Iceberg table of events, read through DuckDB.

- ``tables``       the table's columns (Arrow and Iceberg), properties and the row buffer
- ``catalog``      ``StoreLocation``: which catalog and warehouse (embedded SQLite, or PostgreSQL + S3);
                   failures of either as one plain line
- ``writer``       ``TableWriter``: rows and their Kafka offsets in one commit, exactly once, zombies fenced
- ``staging``      batches a writer that lost a race leaves in the catalog's database for the next commit to carry
- ``snapshots``    which files make up a snapshot; pinning one so an answer can be redone
- ``maintenance``  compaction, snapshot expiry, orphan files
- ``plans``        what a reader pins, and the plans an embedded store keeps for the next process
- ``engine``       ``Store``: a DuckDB ``events`` view over one snapshot, and the queries; the only
                   module importing duckdb
- ``spark_holdings`` the holdings table computed on Apache Spark, on subject shards; the only module
                   importing pyspark (inside its functions: lineage runs without it)

pyiceberg and pyarrow are imported only in this package. Each name below comes from its module on
first use: a command answering from kept plans (``plans``) imports duckdb, not the writer's pyiceberg
(unless it reads erasure certificates).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lineage.store.catalog import StoreLocation
    from lineage.store.engine import QueryName, Session, Store, queries_dir, query_text
    from lineage.store.maintenance import CompactionReport
    from lineage.store.writer import PartitionRows, Stored, TableWriter

__all__ = [
    "CompactionReport",
    "PartitionRows",
    "QueryName",
    "Session",
    "Store",
    "StoreLocation",
    "Stored",
    "TableWriter",
    "queries_dir",
    "query_text",
]

_HOMES = {
    "StoreLocation": "catalog",
    "CompactionReport": "maintenance",
    **dict.fromkeys(("QueryName", "Session", "Store", "queries_dir", "query_text"), "engine"),
    **dict.fromkeys(("PartitionRows", "Stored", "TableWriter"), "writer"),
}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module when first asked for (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
