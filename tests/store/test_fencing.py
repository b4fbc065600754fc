"""Fencing in the table writer: a writer claimed over mid-commit stores nothing, and no offset goes back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lineage.contract.records import make_record, new_event_id
from lineage.store import PartitionRows, Store, StoreLocation, TableWriter
from lineage.store.tables import offset_key
from tests.fixtures import T0

ORIGIN = "fence.topic"


def _rows(first: int, last: int) -> PartitionRows:
    batch = PartitionRows(first, last)
    for offset in range(first, last + 1):
        record = make_record(
            "COLLECTED",
            system="web",
            system_region="CN",
            event_id=new_event_id(),
            subject_id=f"user-{offset}",
            categories=["user.contact.email"],
            purpose="essential.service",
            legal_basis="CONTRACT",
            occurred_at=T0,
        )
        batch.rows.append(record, offset)
    return batch


def _meanwhile(writer: TableWriter, action: Any) -> None:
    """Run ``action`` once, after ``writer`` has read the table and written its files but before it commits."""
    write_files = writer._write_files

    def then_act(*args: Any) -> Any:
        files = write_files(*args)
        writer._write_files = write_files  # type: ignore[method-assign]
        action()
        return files

    writer._write_files = then_act  # type: ignore[method-assign]


def test_a_writer_claimed_over_while_writing_its_files_stores_nothing(tmp_path: Path) -> None:
    """The claim lands between the writer's read of the table and its commit: the commit must not store."""
    location = StoreLocation.embedded(tmp_path / "store")
    a, b = TableWriter(location, ORIGIN, member="a"), TableWriter(location, ORIGIN, member="b")
    a.claim([0])
    assert [s.rows for s in a.commit({0: _rows(0, 9)})] == [10]
    _meanwhile(a, lambda: b.claim([0]))
    assert a.commit({0: _rows(10, 19)}) == []
    assert a.fenced == {0}
    assert Store(location).count() == 10
    assert location.load().properties[offset_key(ORIGIN, 0)] == "9"


def test_a_stale_offsets_only_commit_does_not_move_an_offset_back(tmp_path: Path) -> None:
    """A zombie's offsets-only commit (a batch of dead letters) racing the new owner's cannot rewind its offset."""
    location = StoreLocation.embedded(tmp_path / "store")
    a, b = TableWriter(location, ORIGIN, member="a"), TableWriter(location, ORIGIN, member="b")
    a.claim([0])
    a.commit({0: _rows(0, 9)})
    # b takes over and stores offsets 10..29 that were all dead letters (no rows: no new snapshot)
    _meanwhile(a, lambda: (b.claim([0]), b.commit({0: PartitionRows(10, 29)})))
    a.commit({0: PartitionRows(10, 14)})
    assert location.load().properties[offset_key(ORIGIN, 0)] == "29"
