"""The lineage store: durable Parquet segments, read through DuckDB.

- ``segments``  immutable Parquet files named by the offsets they hold; the only module importing pyarrow
- ``engine``    ``Store``: a DuckDB connection with an ``events`` view, the queries, compaction; the
                only module importing duckdb
"""

from lineage.store.engine import CompactionReport, QueryName, Session, Store, queries_dir, query_text

__all__ = ["CompactionReport", "QueryName", "Session", "Store", "queries_dir", "query_text"]
