"""The table writer: rows and offsets in one commit, races lost and retried, stale commits refused, zombies fenced."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pyiceberg.exceptions import CommitFailedException

from lineage.contract.records import make_record
from lineage.store import PartitionRows, Store, StoreLocation, TableWriter
from lineage.store.tables import offset_key
from tests.fixtures import T0


def _batch(first: int, last: int) -> PartitionRows:
    batch = PartitionRows(first, last)
    for offset in range(first, last + 1):
        record = make_record(
            "COLLECTED",
            system="web",
            system_region="CN",
            subject_id=f"user-{offset % 7}",
            categories=["user.contact.email"],
            purpose="essential.service",
            legal_basis="CONTRACT",
            occurred_at=T0,
        )
        batch.rows.append(record, offset)
    return batch


def _offsets(root: Path) -> list[tuple[int, int]]:
    rows = Store(root).sql("SELECT kafka_partition AS p, kafka_offset AS o FROM events ORDER BY 1, 2")
    return [(r["p"], r["o"]) for r in rows]


def test_the_built_in_retry_is_off_so_conflicts_reach_our_loop(tmp_path: Path) -> None:
    """Pyiceberg's retry re-sends stale offsets: the table is made with it off."""
    table = StoreLocation.embedded(tmp_path).load(create=True)
    assert table.properties["commit.retry.num-retries"] == "0"
    assert table.format_version == 2


def test_rows_and_offsets_commit_together(tmp_path: Path) -> None:
    """One commit stores the rows and the partitions' last offsets; a snapshot summary records the ranges."""
    writer = TableWriter(StoreLocation.embedded(tmp_path), "events")
    stored = writer.commit({0: _batch(0, 9), 3: _batch(100, 104)})
    assert [(s.partition, s.first, s.last, s.rows) for s in stored] == [(0, 0, 9, 10), (3, 100, 104, 5)]
    assert writer.stored() == {0: 9, 3: 104}
    table = StoreLocation.embedded(tmp_path).load()
    assert len(table.metadata.snapshots) == 1
    assert table.current_snapshot().summary["lineage.offsets.events"] == '{"0": [0, 9], "3": [100, 104]}'


def test_a_stale_offsets_only_commit_is_refused(tmp_path: Path) -> None:
    """An offsets-only commit built on an old snapshot fails instead of rewinding another writer's offsets."""
    location = StoreLocation.embedded(tmp_path)
    writer = TableWriter(location, "events")
    writer.commit({0: _batch(0, 4)})
    stale = location.load()
    writer.commit({0: _batch(5, 9)})
    tx = writer._transaction(stale)
    tx.set_properties({offset_key("events", 0): "4"})
    with pytest.raises(CommitFailedException):
        tx.commit_transaction()
    assert writer.stored() == {0: 9}


def test_racing_writers_store_each_offset_once(tmp_path: Path) -> None:
    """Four threads each commit offsets 0..199 of one partition, in batches of different sizes: each stored once."""
    location = StoreLocation.embedded(tmp_path)
    TableWriter(location, "events").stored()  # create the table before the race

    def write(size: int) -> None:
        writer = TableWriter(location, "events")
        for first in range(0, 200, size):
            writer.commit({0: _batch(first, min(first + size, 200) - 1)})

    threads = [threading.Thread(target=write, args=(size,)) for size in (13, 17, 20, 29)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _offsets(tmp_path) == [(0, o) for o in range(200)]


def test_a_fenced_writer_stores_nothing_more(tmp_path: Path) -> None:
    """A writer whose partition was claimed by another (a zombie) drops its rows; the new owner's stand."""
    location = StoreLocation.embedded(tmp_path)
    zombie = TableWriter(location, "events", member="old")
    assert zombie.claim([0]) == {}
    zombie.commit({0: _batch(0, 9)})
    owner = TableWriter(location, "events", member="new")
    assert owner.claim([0]) == {0: 10}
    owner.commit({0: _batch(10, 19)})
    assert zombie.commit({0: _batch(10, 24)}) == [] and zombie.fenced == {0}
    assert _offsets(tmp_path) == [(0, o) for o in range(20)]
    props = location.load().properties
    assert props["lineage.owner.events.0"] == "2:new"


def test_an_offsets_only_commit_counts_dead_letters_as_consumed(tmp_path: Path) -> None:
    """A batch with no valid rows still moves the offsets (no data file, no rows)."""
    writer = TableWriter(StoreLocation.embedded(tmp_path), "events")
    [stored] = writer.commit({2: PartitionRows(40, 45)})
    assert (stored.first, stored.last, stored.rows) == (40, 45, 0)
    assert writer.stored() == {2: 45}


def test_a_past_snapshot_answers_as_it_did(tmp_path: Path) -> None:
    """``Store(snapshot=...)`` reads the table as it was, by id or by a pinned name, after later commits."""
    from lineage.store.snapshots import pin

    location = StoreLocation.embedded(tmp_path)
    writer = TableWriter(location, "events")
    writer.commit({0: _batch(0, 9)})
    first = location.load().current_snapshot().snapshot_id
    pin(location, "answer-1")
    writer.commit({0: _batch(10, 29)})
    assert Store(tmp_path).count() == 30
    assert Store(tmp_path, snapshot=first).count() == 10
    assert Store(tmp_path, snapshot="answer-1").count() == 10
    Store(tmp_path).compact(expire_after_s=0, grace_s=0)
    assert Store(tmp_path, snapshot="answer-1").count() == 10  # kept by its tag through expiry and cleanup


def test_compaction_then_expiry_frees_the_replaced_files(tmp_path: Path) -> None:
    """Once the snapshots that read them are expired, replaced files are removed; the data stays whole."""
    location = StoreLocation.embedded(tmp_path)
    writer = TableWriter(location, "events")
    for first in range(0, 50, 10):
        writer.commit({0: _batch(first, first + 9)})
    store = Store(tmp_path)
    store.compact(grace_s=3600)  # replaced files kept: young, and older snapshots still read them
    assert len(list(tmp_path.rglob("*.parquet"))) == 6
    report = store.compact(expire_after_s=0, grace_s=0)
    assert report.expired >= 5 and report.removed >= 5
    assert len(list(tmp_path.rglob("*.parquet"))) == 1
    assert _offsets(tmp_path) == [(0, o) for o in range(50)]


def test_a_pin_is_never_moved_and_never_names_main_or_a_number(tmp_path: Path) -> None:
    """Pinning an existing name, 'main', or a number is refused; the first pin still reads as it did."""
    from lineage.errors import ConfigurationError
    from lineage.store.snapshots import pin

    location = StoreLocation.embedded(tmp_path)
    writer = TableWriter(location, "events")
    writer.commit({0: _batch(0, 4)})
    pin(location, "regulator-1")
    writer.commit({0: _batch(5, 9)})
    for name in ("regulator-1", "main", "42", " x", ""):
        with pytest.raises(ConfigurationError, match="--pin"):
            pin(location, name)
    assert Store(tmp_path, snapshot="regulator-1").count() == 5
    assert Store(tmp_path).count() == 10 and writer.commit({0: _batch(10, 11)})[0].rows == 2


def test_expiry_keeps_a_snapshot_until_it_has_been_replaced_for_the_retention(tmp_path: Path) -> None:
    """An old snapshot that was current a moment ago is not expired: readers may be using it."""
    import time

    location = StoreLocation.embedded(tmp_path)
    writer = TableWriter(location, "events")
    writer.commit({0: _batch(0, 4)})
    # older than the retention, while its replacement (next) is younger: the commit and the compaction
    # have the 10 s between them, however loaded the machine
    time.sleep(10.5)
    old = location.load().current_snapshot().snapshot_id
    writer.commit({0: _batch(5, 9)})  # replaces it now
    report = Store(tmp_path).compact(expire_after_s=10.0, grace_s=3600)
    assert location.load().snapshot_by_id(old) is not None and report.expired == 0
    assert Store(tmp_path, snapshot=old).count() == 5
