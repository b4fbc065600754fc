"""The writer's transaction builds staged metadata once per update, and commits stay exact across many snapshots."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from lineage.contract.records import make_record
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.store import PartitionRows, Store, StoreLocation, TableWriter
from lineage.store.holdings import load_holdings
from lineage.store.writer import _Transaction


def _batch(first: int, rows: int) -> PartitionRows:
    batch = PartitionRows(first, first + rows - 1)
    for offset in range(first, first + rows):
        record = make_record(
            "COLLECTED",
            system="web",
            system_region="CN",
            subject_id=f"user-{offset}",
            occurred_at=datetime(2026, 5, 1, tzinfo=UTC),
            categories=["user.contact.email"],
            purpose="essential.service",
            legal_basis="CONTRACT",
            subject_jurisdiction="CN",
            retention_days=365,
        )
        batch.rows.append(record, offset)
    return batch


def test_staged_metadata_is_built_once_per_update(tmp_path: Path) -> None:
    """Reading the staged metadata twice gives one object; staging an update gives a new one that shows it."""
    table = StoreLocation.embedded(tmp_path).load(create=True)
    tx = _Transaction(table)
    first = tx.table_metadata
    assert tx.table_metadata is first
    tx.set_properties({"lineage.test": "1"})
    assert tx.table_metadata is not first
    assert tx.table_metadata.properties["lineage.test"] == "1"
    assert "lineage.test" not in table.metadata.properties


def test_many_commits_store_every_offset_once(tmp_path: Path) -> None:
    """Forty commits (forty snapshots) store each row once and move the offset to the last one."""
    location = StoreLocation.embedded(tmp_path)
    writer = TableWriter(location, "topic")
    writer.claim([0])
    for c in range(40):
        stored = writer.commit({0: _batch(c * 5, 5)})
        assert [(s.first, s.last, s.rows) for s in stored] == [(c * 5, c * 5 + 4, 5)]
    assert writer.commit({0: _batch(195, 5)}) == []  # already stored: nothing again
    assert writer.stored() == {0: 199}
    store = Store(location)
    assert store.count() == 200
    assert sorted(store.event_ids()) == sorted(set(store.event_ids()))


def test_opening_an_existing_table_to_write_leaves_no_metadata_file_behind(tmp_path: Path) -> None:
    """Every holdings refresh opens its table with create: no unreferenced metadata file is written each time."""
    location = StoreLocation.embedded(tmp_path)
    writer = TableWriter(location, "origin.topic")
    writer.claim([0])
    maintainer = HoldingsMaintainer(location)
    for first in (0, 10, 20):
        writer.commit({0: _batch(first, 10)})
        maintainer.refresh()
    for table in (location.load(), load_holdings(location)):
        kept = {e.metadata_file for e in table.metadata.metadata_log} | {table.metadata_location}
        folder = Path(table.metadata_location.removeprefix("file://")).parent
        written = {f"file://{p}" for p in folder.glob("*.metadata.json")}
        assert written - kept == set(), "a metadata file no version of the table refers to"
