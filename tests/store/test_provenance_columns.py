"""A store made before the provenance columns keeps working: read as it is, evolved by its next writer, compacted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from lineage import default_taxonomy
from lineage.answers import access_request
from lineage.codec import Codec
from lineage.contract.records import Record, make_record
from lineage.ingest.pipeline import Ingestor
from lineage.private import private_files
from lineage.store import Store, StoreLocation
from lineage.store.tables import (
    COLUMNS,
    EVENTS,
    PROVENANCE,
    TABLE_PROPERTIES,
    ColumnBuffer,
    events_sort_order,
    iceberg_schema,
)
from lineage.transport.provenance import sdk_headers

TAXONOMY = default_taxonomy()
AT = datetime(2026, 5, 1, tzinfo=UTC)
OLD_COLUMNS = pa.schema([f for f in COLUMNS if f.name not in PROVENANCE])


def _collected(subject: str) -> Record:
    return make_record("COLLECTED", system="shop", system_region="CN", subject_id=subject,
                       categories=["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT",
                       source="direct", occurred_at=AT)  # fmt: skip


def _old_store(folder: Path, **properties: str) -> StoreLocation:
    """A store as the previous release left it: the table without the provenance columns, two files of rows."""
    location = StoreLocation.embedded(folder)
    with private_files():
        schema = iceberg_schema(OLD_COLUMNS)
        table = location.load_table(
            EVENTS, schema, events_sort_order(), {**TABLE_PROPERTIES, **properties}, create=True
        )
        for offset, subject in enumerate(("old-1", "old-2")):
            rows = ColumnBuffer()
            rows.append(_collected(subject), offset)
            table.append(rows.table("old.topic", 0).select(OLD_COLUMNS.names))
            table = table.refresh()
    return location


def test_an_old_table_is_read_as_it_is_with_no_provenance(tmp_path: Path) -> None:
    """Before any new write, the old table's events read with null provenance; its schema is left unchanged."""
    location = _old_store(tmp_path / "store")
    store = Store(location)
    assert store.sql("SELECT subject_id, sent_via, sent_via_name, sent_via_run FROM events ORDER BY 1") == [
        {"subject_id": s, "sent_via": None, "sent_via_name": None, "sent_via_run": None} for s in ("old-1", "old-2")
    ]
    [source] = access_request(store, "old-1", TAXONOMY).sources
    assert source["sent_via"] is None and source["event_type"] == "COLLECTED"
    assert "sent_via" not in {f.name for f in location.load().schema().fields}  # a reader changes nothing


def test_an_old_table_is_compacted_in_its_own_layout(tmp_path: Path) -> None:
    """Compaction of a table without the provenance columns rewrites its files without adding them."""
    location = _old_store(tmp_path / "store")
    report = Store(location).compact(min_files=2)
    assert (report.files_in, report.files_out) == (2, 1)
    assert len(Store(location).sql("SELECT event_id FROM events")) == 2


def test_the_next_writer_adds_the_columns_and_old_and_new_rows_read_together(tmp_path: Path) -> None:
    """An ingest into an old table adds the columns; old rows read null, new ones their provenance, compacted too."""
    location = _old_store(tmp_path / "store")
    ingestor = Ingestor(location, "new.topic", taxonomy=TAXONOMY)
    assert ingestor.add(0, 0, Codec().encode_record(_collected("new-1")), None, sdk_headers("9.9")) is None
    ingestor.flush()
    schema = location.load().schema()
    assert [f.name for f in schema.fields][-3:] == list(PROVENANCE)
    wanted = [{"subject_id": "new-1", "sent_via": "sdk", "sent_via_name": "9.9"},
              {"subject_id": "old-1", "sent_via": None, "sent_via_name": None},
              {"subject_id": "old-2", "sent_via": None, "sent_via_name": None}]  # fmt: skip
    query = "SELECT subject_id, sent_via, sent_via_name FROM events ORDER BY 1"
    assert Store(location).sql(query) == wanted
    report = Store(location).compact(min_files=2)
    assert report.files_out == 1
    assert Store(location).sql(query) == wanted


@pytest.mark.parametrize("metrics", ["truncate(16)", "none"])
def test_a_reader_learns_from_the_manifests_that_old_and_new_files_differ_in_columns(
    tmp_path: Path, metrics: str
) -> None:
    """Old files beside files with the provenance columns: read by name, also when the manifests count no column."""
    location = _old_store(tmp_path / "store", **{"write.metadata.metrics.default": metrics})
    # the old files alone: one layout, unless no column is counted (then read by name: right, slower)
    assert Store(location)._pin().mixed_layouts is (metrics == "none")  # noqa: SLF001 - what the reader learnt
    ingestor = Ingestor(location, "new.topic", taxonomy=TAXONOMY)
    assert ingestor.add(0, 0, Codec().encode_record(_collected("new-1")), None, sdk_headers("9.9")) is None
    ingestor.flush()
    store = Store(location)
    assert store._pin().mixed_layouts is True  # noqa: SLF001
    [source] = access_request(store, "new-1", TAXONOMY).sources
    assert source["sent_via"] == "sdk"
    query = "SELECT subject_id, sent_via FROM events ORDER BY 1"
    assert store.sql(query) == [{"subject_id": "new-1", "sent_via": "sdk"}] + [
        {"subject_id": s, "sent_via": None} for s in ("old-1", "old-2")
    ]
