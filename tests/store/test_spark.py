"""Spark with the Iceberg runtime reads and compacts the tables pyiceberg writes, and pyiceberg carries on after.

On a local warehouse and on S3 (SeaweedFS), with the catalog in PostgreSQL. Written against plain
pyiceberg for now; the store's own writer replaces the appends when it lands.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import IntegerType, LongType, NestedField, StringType, TimestamptzType
from pyspark import SparkContext

from tests.services import SeaweedS3
from tests.spark import CATALOG, S3Access, spark_session, stop_spark
from tests.store.conftest import CatalogDatabase

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


@dataclass(frozen=True)
class Warehouse:
    """Where the tables' files go, with the settings each engine needs to reach them."""

    uri: str
    pyiceberg: dict[str, str] = field(repr=False)
    s3: S3Access | None = None


@pytest.fixture(params=["local", "s3"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    """A local warehouse folder, or a fresh prefix in the test S3 server's bucket."""
    if request.param == "local":
        return Warehouse(f"file://{tmp_path}/warehouse", {})
    s3: SeaweedS3 = request.getfixturevalue("s3")
    access = S3Access(s3.endpoint, s3.access_key, s3.secret_key, s3.region)
    settings = {
        "s3.endpoint": s3.endpoint,
        "s3.access-key-id": s3.access_key,
        "s3.secret-access-key": s3.secret_key,
        "s3.region": s3.region,
        "s3.path-style-access": "true",
    }
    return Warehouse(f"s3://{s3.bucket}/{uuid.uuid4().hex}", settings, access)


@pytest.fixture
def catalog(catalog_database: CatalogDatabase, warehouse: Warehouse) -> Iterator[SqlCatalog]:
    """The pyiceberg SQL catalog ``lineage`` on PostgreSQL."""
    cat = SqlCatalog(CATALOG, uri=catalog_database.sqlalchemy_url, warehouse=warehouse.uri, **warehouse.pyiceberg)
    cat.create_namespace_if_not_exists("lineage")
    yield cat
    cat.engine.dispose()  # close its pooled connections: the server outlives this test


@pytest.fixture
def spark(catalog_database: CatalogDatabase, warehouse: Warehouse, spark_jars: list[Path]) -> Iterator[Any]:
    """A local Spark session whose catalog ``lineage`` is the same database; its JVM ended after."""
    db = catalog_database
    session = spark_session(db.jdbc_url, db.user, db.password, warehouse.uri, warehouse.s3, jars=spark_jars)
    try:
        yield session
    finally:
        stop_spark(session)


def test_spark_reads_and_compacts_pyiceberg_tables(
    catalog: SqlCatalog, spark: Any, catalog_database: CatalogDatabase, warehouse: Warehouse
) -> None:
    """Spark counts pyiceberg's rows per partition, sorts them into one file, and pyiceberg keeps appending."""
    gateway = SparkContext._gateway
    assert gateway is not None
    command_line = Path(f"/proc/{gateway.proc.pid}/cmdline").read_text(errors="replace")
    assert catalog_database.password not in command_line
    assert warehouse.s3 is None or warehouse.s3.secret_access_key not in command_line
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
    assert len(list(table.scan().plan_files())) == 1
    subjects = table.scan(selected_fields=("subject_id",)).to_arrow()["subject_id"].to_pylist()
    assert subjects == sorted(subjects)  # one file, read in its row order

    first = APPENDS_PER_PARTITION * ROWS_PER_APPEND
    _append(table, 0, first, ROWS_PER_APPEND)
    table = catalog.load_table(TABLE)
    after = _keys(table)
    assert after == sorted(before + [(0, o) for o in range(first, first + ROWS_PER_APPEND)])
    assert table.properties[OFFSET_KEY.format(0)] == str(first + ROWS_PER_APPEND - 1)
