"""Spark with the Iceberg runtime reads and compacts the tables pyiceberg writes, and pyiceberg carries on after.

Written against plain pyiceberg for now; the store's own writer replaces the appends when it lands.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import IntegerType, LongType, NestedField, StringType, TimestamptzType
from pyspark import SparkContext

from tests.spark import CATALOG, spark_session, stop_spark
from tests.store.conftest import Postgres

# pyspark leaves each collect()'s result socket to the garbage collector ("automatically closed when
# garbage-collected", pyspark/util.py): an unclosed socket there is pyspark's, not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)

TOPIC = "lineage.events"
TABLE = "lineage.events"  # namespace.table in pyiceberg; Spark needs the catalog too: lineage.lineage.events
OFFSET_KEY = "lineage.offset." + TOPIC + ".{}"
ROWS_PER_APPEND = 500
APPENDS_PER_PARTITION = 3

SCHEMA = Schema(
    NestedField(1, "event_id", StringType(), required=False),
    NestedField(2, "subject_id", StringType(), required=False),
    NestedField(3, "occurred_at", TimestamptzType(), required=False),
    NestedField(4, "kafka_partition", IntegerType(), required=False),
    NestedField(5, "kafka_offset", LongType(), required=False),
)
ARROW = pa.schema(
    [
        ("event_id", pa.string()),
        ("subject_id", pa.string()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
    ]
)


def _batch(partition: int, first: int, n: int) -> pa.Table:
    offsets = list(range(first, first + n))
    return pa.table(
        {
            "event_id": [f"e{partition}-{o}" for o in offsets],
            "subject_id": [f"user-{(o * 7919) % 97}" for o in offsets],  # shuffled, so the sort has work to do
            "occurred_at": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)] * n,
            "kafka_partition": [partition] * n,
            "kafka_offset": offsets,
        },
        schema=ARROW,
    )


def _append(table: Table, partition: int, first: int, n: int) -> None:
    """One consumer commit: the rows and the partition's last offset in one transaction."""
    with table.transaction() as tx:
        tx.append(_batch(partition, first, n))
        tx.set_properties({OFFSET_KEY.format(partition): str(first + n - 1)})


def _keys(table: Table) -> list[tuple[int, int]]:
    rows = table.scan(selected_fields=("kafka_partition", "kafka_offset")).to_arrow()
    return sorted(zip(rows["kafka_partition"].to_pylist(), rows["kafka_offset"].to_pylist(), strict=True))


@pytest.fixture
def catalog(postgres: Postgres, tmp_path: Path) -> Iterator[SqlCatalog]:
    """The pyiceberg SQL catalog ``lineage`` on PostgreSQL, with a local warehouse."""
    cat = SqlCatalog(CATALOG, uri=postgres.sqlalchemy_url, warehouse=f"file://{tmp_path}/warehouse")
    cat.create_namespace_if_not_exists("lineage")
    yield cat
    cat.engine.dispose()  # close its pooled connections before the server stops


@pytest.fixture
def spark(postgres: Postgres, tmp_path: Path, spark_jars: list[Path]) -> Iterator[Any]:
    """A local Spark session whose catalog ``lineage`` is the same PostgreSQL database; its JVM ended after."""
    session = spark_session(
        postgres.jdbc_url, postgres.user, postgres.password, f"file://{tmp_path}/warehouse", jars=spark_jars
    )
    try:
        yield session
    finally:
        stop_spark(session)


def test_spark_reads_and_compacts_pyiceberg_tables(catalog: SqlCatalog, spark: Any, postgres: Postgres) -> None:
    """Spark counts pyiceberg's rows per partition, sorts them into one file, and pyiceberg keeps appending."""
    gateway = SparkContext._gateway
    assert gateway is not None
    assert postgres.password not in Path(f"/proc/{gateway.proc.pid}/cmdline").read_text(errors="replace")
    table = catalog.create_table(
        TABLE, schema=SCHEMA, properties={"format-version": "2", "commit.retry.num-retries": "0"}
    )
    for partition in (0, 1):
        for i in range(APPENDS_PER_PARTITION):
            _append(table, partition, i * ROWS_PER_APPEND, ROWS_PER_APPEND)
    table = catalog.load_table(TABLE)
    before = _keys(table)
    files_before = len(list(table.scan().plan_files()))
    assert files_before == 2 * APPENDS_PER_PARTITION

    counted = spark.sql(
        f"SELECT kafka_partition, count(*) AS n FROM {CATALOG}.{TABLE} GROUP BY kafka_partition"
    ).collect()
    assert {row["kafka_partition"]: row["n"] for row in counted} == dict(Counter(p for p, _ in before))

    result = spark.sql(
        f"CALL {CATALOG}.system.rewrite_data_files(table => '{CATALOG}.{TABLE}', strategy => 'sort', "
        "sort_order => 'subject_id ASC', options => map('rewrite-all','true'))"
    ).collect()[0]
    assert (result["rewritten_data_files_count"], result["added_data_files_count"]) == (files_before, 1)

    table = catalog.load_table(TABLE)
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    assert snapshot.summary.operation.value == "replace"
    assert _keys(table) == before
    assert {k: v for k, v in table.properties.items() if k.startswith("lineage.")} == {
        OFFSET_KEY.format(0): str(APPENDS_PER_PARTITION * ROWS_PER_APPEND - 1),
        OFFSET_KEY.format(1): str(APPENDS_PER_PARTITION * ROWS_PER_APPEND - 1),
    }
    (task,) = table.scan().plan_files()
    subjects = pa.parquet.read_table(task.file.file_path.removeprefix("file://"), columns=["subject_id"])
    assert subjects["subject_id"].to_pylist() == sorted(subjects["subject_id"].to_pylist())

    first = APPENDS_PER_PARTITION * ROWS_PER_APPEND
    _append(table, 0, first, ROWS_PER_APPEND)
    table = catalog.load_table(TABLE)
    after = _keys(table)
    assert after == sorted(before + [(0, o) for o in range(first, first + ROWS_PER_APPEND)])
    assert table.properties[OFFSET_KEY.format(0)] == str(first + ROWS_PER_APPEND - 1)
