"""Apache Spark computes the holdings table on subject shards, and its rows equal the maintainer's on one machine.

A simulated organisation's events (nightly bulk exports, retention erasures) plus bulk erasures and
identifier links shared across subjects, ingested by our Ingestor into a store whose catalog is
PostgreSQL; Spark reads the events table through Iceberg's JDBC catalog of the same database.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pytest

import lineage
from lineage import Codec, Settings, default_taxonomy
from lineage.contract.records import Record, make_record
from lineage.errors import ConfigurationError
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.store import StoreLocation
from lineage.store.holdings import HOLDINGS_COLUMNS, ROW_COLUMNS, load_holdings, read_rows, read_state
from lineage.store.spark_holdings import build_holdings
from lineage.store.tables import RETAINED_BEFORE
from lineage.testing import MemorySink
from lineage.world.organisations import build
from lineage.world.sim import Plan, WorldSize, emit
from tests.spark import CATALOG, spark_session, stop_spark
from tests.store.conftest import CatalogDatabase

# pyspark leaves each collect()'s result socket to the garbage collector (see tests/store/test_spark.py)
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)

TAXONOMY = default_taxonomy()
SIZE = WorldSize(subjects=220, days=120, seed=11, violations=1)


def _extras(plans: list[Plan]) -> list[Record]:
    """Bulk erasures at the nightly exports' recipient, and devices shared by subjects of different shards."""
    mooffers = next(p for p in plans if p.org.key == "mooffers")
    host, web = mooffers.org.party("server-hosting"), mooffers.org.party("mooffers-web")
    subjects = sorted({str(e.fields["subject_id"]) for p in plans for e in p.events if e.fields.get("subject_id")})
    common: dict[str, Any] = {"system": "mooffers-web", "system_region": "CN"}
    out: list[Record] = []
    for week in (3, 7, 11):
        at = SIZE.start + timedelta(weeks=week, hours=5)
        out.append(make_record(
            "ERASED", subject_id=None, bulk_as_of=at - timedelta(days=2), holder=host, erasure_outcome="ERASED",
            categories=["user.device"], occurred_at=at, **common,
        ))  # fmt: skip
    for i in range(40):  # subject i and i+40 share a device; i and i+1 an e-mail: long chains of one person
        at = SIZE.start + timedelta(days=10 + i, hours=3)
        linked = [f"device-{i % 40}", f"mail-{i // 2}"]
        out.append(make_record(
            "COLLECTED", subject_id=subjects[(i * 37) % len(subjects)], holder=web, categories=["user.device"],
            purpose="essential.service", legal_basis="CONTRACT", linked_subject_ids=linked, occurred_at=at, **common,
        ))  # fmt: skip
    return out


def _ingest(location: StoreLocation) -> int:
    """The simulated organisations' events and the extras, through our Ingestor on three partitions."""
    plans, _ = build(SIZE, TAXONOMY, ["mochat", "mooffers"])
    sink = MemorySink()
    emit(plans, sink, TAXONOMY)
    codec = Codec()
    messages = [m.value for m in sink.messages] + [codec.encode_record(r) for r in _extras(plans)]
    ingestor = Ingestor(location, "events", taxonomy=TAXONOMY)
    for offset, message in enumerate(messages):
        assert ingestor.add(offset % 3, offset, message) is None
    ingestor.flush()
    return len(messages)


def _rows(table: pa.Table) -> Counter[tuple[Any, ...]]:
    """The rows as a multiset of tuples, column order and types as the holdings table's (what they say: no ``gen``)."""
    table = table.select(ROW_COLUMNS.names).cast(ROW_COLUMNS)
    return Counter(tuple(tuple(v) if isinstance(v, list) else v for v in row.values()) for row in table.to_pylist())


def _ship_lineage(spark: Any, folder: Path) -> None:
    """Send this checkout's ``lineage`` package to Spark's Python workers, as a job's code is shipped."""
    package = Path(lineage.__file__).parent
    archive = folder / "lineage.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in package.rglob("*.py"):
            zf.write(path, path.relative_to(package.parent))
    spark.sparkContext.addPyFile(str(archive))


def test_spark_holdings_on_shards_equal_the_maintainers_rebuild(
    catalog_database: CatalogDatabase, spark_jars: list[Path], tmp_path: Path
) -> None:
    """A few thousand events: Spark's holdings rows (4 shards) equal HoldingsMaintainer.refresh(rebuild=True)'s."""
    db = catalog_database
    warehouse = f"file://{tmp_path}/warehouse"
    settings = Settings(
        catalog_uri=db.server.sqlalchemy_uri().rpartition("/")[0] + "/" + db.name,
        catalog_password=db.password,
        warehouse=warehouse,
    )
    location = StoreLocation.from_settings(settings)
    stored = _ingest(location)
    assert stored > 2000
    HoldingsMaintainer(location).refresh(rebuild=True)
    table = load_holdings(location)
    state = read_state(table)
    assert state.snapshot_id is not None
    expected = _rows(read_rows(location, table, state.snapshot_id))
    kinds = Counter(row[0] for row in expected.elements())
    assert kinds["run"] > 1000 and kinds["flow"] > 100 and kinds["link"] >= 40 and kinds["person"] > 80

    try:
        spark = spark_session(db.jdbc_url, db.user, db.password, warehouse, jars=spark_jars)
    except Exception as exc:  # fail loudly, never skip
        pytest.fail(f"Spark could not start: {exc}", pytrace=False)
    try:
        _ship_lineage(spark, tmp_path)
        events, target = f"{CATALOG}.{settings.namespace}.events", f"{CATALOG}.{settings.namespace}.holdings_spark"
        built = build_holdings(spark, events, target, shards=4)
        got = _rows(spark.table(target).toArrow())
        properties = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {target}").collect()}
        partitions = {r["b"] for r in spark.sql(f"SELECT partition.bucket AS b FROM {target}.files").collect()}
    finally:
        stop_spark(spark)
    assert built.source == state.source and built.watermark == state.watermark
    assert properties["lineage.holdings.source"] == str(state.source)
    assert got == expected
    bucket = HOLDINGS_COLUMNS.names.index("bucket")  # the maintainer's layout: files partitioned by bucket
    assert partitions == {row[bucket] for row in expected}, partitions


@pytest.mark.parametrize(
    ("events", "holdings", "shards", "setting"),
    [
        ("lineage.events; DROP TABLE x", "lineage.h", 2, "events"),
        ("lineage.events", "h", 2, "holdings"),
        ("lineage.events", "lineage.lineage.holdings", 2, "holdings"),
        ("lineage.events", "lineage.h", 0, "shards"),
    ],
)
def test_a_bad_name_or_shard_count_is_refused(events: str, holdings: str, shards: int, setting: str) -> None:
    """Plain dotted table names only (they reach Spark's parser), never the maintainer's table; shards >= 1."""
    with pytest.raises(ConfigurationError) as refused:
        build_holdings(cast(Any, None), events, holdings, shards=shards)
    assert refused.value.setting == setting


def test_an_events_table_after_retention_is_refused_in_one_line(
    catalog_database: CatalogDatabase, spark_jars: list[Path], tmp_path: Path
) -> None:
    """Events retired by ``lineage retain``: the Spark build refuses, naming events, rather than lose their holdings."""
    db = catalog_database
    warehouse = f"file://{tmp_path}/warehouse"
    settings = Settings(
        catalog_uri=db.server.sqlalchemy_uri().rpartition("/")[0] + "/" + db.name,
        catalog_password=db.password,
        warehouse=warehouse,
    )
    location = StoreLocation.from_settings(settings)
    _ingest(location)
    location.load().transaction().set_properties({RETAINED_BEFORE: str(10**15)}).commit_transaction()
    try:
        spark = spark_session(db.jdbc_url, db.user, db.password, warehouse, jars=spark_jars)
    except Exception as exc:  # fail loudly, never skip
        pytest.fail(f"Spark could not start: {exc}", pytrace=False)
    try:
        events, target = f"{CATALOG}.{settings.namespace}.events", f"{CATALOG}.{settings.namespace}.holdings_spark"
        with pytest.raises(ConfigurationError) as refused:
            build_holdings(spark, events, target, shards=2)
        made = spark.catalog.tableExists(target)
    finally:
        stop_spark(spark)
    assert refused.value.setting == "events" and "lineage retain" in str(refused.value)
    assert "\n" not in str(refused.value) and not made
