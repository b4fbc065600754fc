"""Apache Spark with the Iceberg runtime reads the table our consumer writes, and compacts it while it writes.

On a local warehouse and on S3 (SeaweedFS), with the catalog in PostgreSQL: Spark's JDBC catalog of the
same name (``lineage``) sees pyiceberg's SQL catalog.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from pyspark import SparkContext

from lineage import Codec, Settings, default_taxonomy
from lineage.answers import access_request
from lineage.answers.forget import forget_person
from lineage.contract.records import make_record, new_event_id
from lineage.ingest.consumer import IngestConsumer
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.store import Store, StoreLocation
from lineage.transport.kafka import KafkaEventSink
from tests.fixtures import T0
from tests.services import SeaweedS3
from tests.spark import CATALOG, S3Access, spark_session, stop_spark
from tests.store.conftest import CatalogDatabase
from tests.store.test_forget import _digest, _world
from tests.store.test_forget import _store as _forget_store

# pyspark leaves each collect()'s result socket to the garbage collector ("automatically closed when
# garbage-collected", pyspark/util.py): an unclosed socket there is pyspark's, not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)

TABLE = "lineage.events"  # namespace.table; Spark needs the catalog too: lineage.lineage.events
CODEC = Codec()


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
def spark(catalog_database: CatalogDatabase, warehouse: Warehouse, spark_jars: list[Path]) -> Iterator[Any]:
    """A local Spark session whose catalog ``lineage`` is the same database; its JVM ended after."""
    db = catalog_database
    session = spark_session(db.jdbc_url, db.user, db.password, warehouse.uri, warehouse.s3, jars=spark_jars)
    try:
        yield session
    finally:
        stop_spark(session)


def _produce(settings: Settings, n: int, first: int) -> set[str]:
    """``n`` valid events for subjects ``user-<i % 50>``, sent on the settings' topic; their ids."""
    sink = KafkaEventSink(settings)
    ids = set()
    for i in range(first, first + n):
        event_id = new_event_id()
        record = make_record(
            "COLLECTED",
            system="web",
            system_region="CN",
            event_id=event_id,
            subject_id=f"user-{(i * 7919) % 50}",  # shuffled, so a sort has work to do
            categories=["user.contact.email"],
            purpose="essential.service",
            legal_basis="CONTRACT",
            occurred_at=T0 + dt.timedelta(seconds=i),
        )
        sink.send(settings.topic, record["subject_id"].encode(), CODEC.encode_record(record), event_id)
        ids.add(event_id)
    sink.flush(60)
    assert sink.failures() == []
    sink.close(10)
    return ids


def _consume(settings: Settings, idle_s: float = 4.0) -> None:
    """Our ingest consumer until the topic is drained."""
    consumer = IngestConsumer(
        settings, group_id=settings.topic + ".g", taxonomy=default_taxonomy(), segment_rows=1500, flush_interval_s=0.5
    )
    consumer.run(threading.Event(), idle_exit_s=idle_s)


def _ours(store: Store) -> dict[int, int]:
    rows = store.sql("SELECT kafka_partition AS p, count(*) AS n FROM events GROUP BY 1")
    return {r["p"]: r["n"] for r in rows}


def test_spark_reads_our_table_and_its_compaction_leaves_consumers_and_answers_exact(
    kafka_settings: Settings, spark: Any, catalog_database: CatalogDatabase, warehouse: Warehouse
) -> None:
    """Spark counts what our consumer stored; a Spark sort-compaction while it writes loses and doubles nothing."""
    gateway = SparkContext._gateway
    assert gateway is not None
    command_line = Path(f"/proc/{gateway.proc.pid}/cmdline").read_text(errors="replace")
    assert catalog_database.password not in command_line
    assert warehouse.s3 is None or warehouse.s3.secret_access_key not in command_line
    db = catalog_database
    settings = replace(
        kafka_settings,
        catalog_uri=db.server.sqlalchemy_uri().rpartition("/")[0] + "/" + db.name,
        catalog_password=db.password,
        warehouse=warehouse.uri,
        **(
            {
                "s3_endpoint": warehouse.s3.endpoint,
                "s3_access_key_id": warehouse.s3.access_key_id,
                "s3_secret_access_key": warehouse.s3.secret_access_key,
            }
            if warehouse.s3
            else {}
        ),
    )
    ids = _produce(settings, 6000, 0)
    _consume(settings)
    store = Store(StoreLocation.from_settings(settings))
    ours = _ours(store)
    assert sum(ours.values()) == 6000
    counted = spark.sql(f"SELECT kafka_partition, count(*) AS n FROM {CATALOG}.{TABLE} GROUP BY 1").collect()
    assert {row["kafka_partition"]: row["n"] for row in counted} == ours
    answer = access_request(store, "user-7", default_taxonomy(), T0 + dt.timedelta(days=1))

    # Spark rewrites every file sorted by subject while our consumer commits more events
    ids |= _produce(settings, 3000, 6000)
    writer = threading.Thread(target=_consume, args=(settings, 6.0))
    writer.start()
    # the table's declared sort order (subject_id, kafka_offset) is the one Spark's sort strategy uses
    result = spark.sql(
        f"CALL {CATALOG}.system.rewrite_data_files(table => '{CATALOG}.{TABLE}', strategy => 'sort', "
        "options => map('rewrite-all','true'))"
    ).collect()[0]
    writer.join(timeout=300)
    assert result["rewritten_data_files_count"] >= 1
    operations = spark.sql(f"SELECT operation FROM {CATALOG}.{TABLE}.snapshots").collect()
    assert "replace" in {row["operation"] for row in operations}

    keys = store.sql("SELECT kafka_partition AS p, kafka_offset AS o, event_id FROM events")
    assert len(keys) == len({(r["p"], r["o"]) for r in keys}) == 9000
    assert {r["event_id"] for r in keys} == ids
    counted = spark.sql(f"SELECT kafka_partition, count(*) AS n FROM {CATALOG}.{TABLE} GROUP BY 1").collect()
    assert {row["kafka_partition"]: row["n"] for row in counted} == _ours(store)
    after = access_request(store, "user-7", default_taxonomy(), T0 + dt.timedelta(days=1))
    # event_sources lists each event, and the events sent meanwhile add user-7's within as_of (the
    # aggregated rows do not change): compared apart, every earlier one must still be there
    assert replace(after, sources=[]) == replace(answer, sources=[])
    assert {s["event_id"] for s in answer.sources} < {s["event_id"] for s in after.sources}


def test_spark_reads_both_tables_after_forget_and_finds_none_of_the_person(
    spark: Any, catalog_database: CatalogDatabase, warehouse: Warehouse
) -> None:
    """After ``forget`` and a ``REFRESH TABLE``, a Spark session reads events and holdings whole, without the person."""
    values, ids, _ = _world()
    db = catalog_database
    s3 = warehouse.s3
    settings = Settings(
        catalog_uri=db.server.sqlalchemy_uri().rpartition("/")[0] + "/" + db.name,
        catalog_password=db.password,
        warehouse=warehouse.uri,
        **(
            {
                "s3_endpoint": s3.endpoint,
                "s3_access_key_id": s3.access_key_id,
                "s3_secret_access_key": s3.secret_access_key,
            }
            if s3
            else {}
        ),
    )
    location = _forget_store(StoreLocation.from_settings(settings), values)
    events, holdings = f"{CATALOG}.{TABLE}", f"{CATALOG}.lineage.holdings"
    marks = ",".join("?" * len(ids))
    whose = f"subject_id IN ({marks}) OR arrays_overlap(linked_subject_ids, array({marks}))"

    def counts() -> tuple[int, int, int]:
        total = spark.sql(f"SELECT count(*) AS n FROM {events}").collect()[0]["n"]
        theirs = spark.sql(f"SELECT count(*) AS n FROM {events} WHERE {whose}", args=[*ids, *ids]).collect()[0]["n"]
        held = spark.sql(f"SELECT count(*) AS n FROM {holdings} WHERE subject IN ({marks}) OR via IN ({marks}) "
                         f"OR other IN ({marks})", args=[*ids, *ids, *ids]).collect()[0]["n"]  # fmt: skip
        return total, theirs, held

    total, theirs, held = counts()  # the session has read (and cached) both tables before forget
    assert theirs > 0 and held > 0
    forget_person(Store(location), [ids[0]], case_ref="SPARK-1", kafka_bound="-", grace_s=0, digest=_digest,
                  refresh_holdings=HoldingsMaintainer(location).refresh)  # fmt: skip
    store = Store(location)
    try:
        stored = store.sql("SELECT count(*) AS n FROM events")[0]["n"]
    finally:
        store.close()
    # Iceberg's Spark catalog caches a table it has read (cache-enabled, on by default): until refreshed
    # the session plans from the snapshot forget expired, whose files are gone, and fails to read them
    spark.sql(f"REFRESH TABLE {events}")
    spark.sql(f"REFRESH TABLE {holdings}")
    assert counts() == (stored, 0, 0) and stored == total - theirs
