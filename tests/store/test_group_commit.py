"""Group commit: a writer's commit carries the batches other writers staged after losing a race."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from lineage.errors import StoreConflictError
from lineage.store import Store, StoreLocation, TableWriter
from lineage.store.maintenance import expire, remove_orphans
from lineage.store.staging import StagedBatch, StagedPart, Staging
from lineage.store.tables import offset_key
from lineage.store.writer import CARRIED
from tests.store.test_fencing import _rows

ORIGIN = "group.topic"


def _before_commit(writer: TableWriter, action: Any) -> None:
    """Run ``action`` once, after ``writer`` staged its batch and built its commit, before it commits."""
    commit = writer._commit

    def then_commit(*args: Any) -> bool:
        writer._commit = commit  # type: ignore[method-assign]
        action()
        return commit(*args)

    writer._commit = then_commit  # type: ignore[method-assign]


def _staged(location: StoreLocation) -> list[StagedBatch]:
    table = location.load()
    return Staging(table.catalog.engine, table.catalog.name, location.identifier()).waiting()  # type: ignore[attr-defined]


def _carried(location: StoreLocation) -> list[str]:
    ids: list[str] = []
    for snapshot in location.load().metadata.snapshots:
        if snapshot.summary is not None and snapshot.summary.get(CARRIED):
            ids += json.loads(snapshot.summary[CARRIED])
    return ids


def test_another_writers_commit_stores_a_staged_batch_once(tmp_path: Path) -> None:
    """A's staged batch rides in B's commit; A reports it stored and stores nothing twice."""
    location = StoreLocation.embedded(tmp_path / "store")
    a, b = TableWriter(location, ORIGIN, member="a"), TableWriter(location, ORIGIN, member="b")
    a.claim([0])
    b.claim([1])
    a._contended = True  # it lost a race last time: it stages before its first try
    _before_commit(a, lambda: b.commit({1: _rows(100, 104)}))
    stored = a.commit({0: _rows(0, 9)})
    assert [(s.partition, s.first, s.last, s.rows) for s in stored] == [(0, 0, 9, 10)]
    assert a.carried == 1 and len(_carried(location)) == 1
    assert Store(location).count() == 15
    props = location.load().properties
    assert (props[offset_key(ORIGIN, 0)], props[offset_key(ORIGIN, 1)]) == ("9", "104")
    assert _staged(location) == []


def test_a_writer_alone_again_stops_staging(tmp_path: Path) -> None:
    """After a commit that lost nothing and carried nothing, the next batch is committed directly."""
    location = StoreLocation.embedded(tmp_path / "store")
    a = TableWriter(location, ORIGIN, member="a")
    a.claim([0])
    a._contended = True
    a.commit({0: _rows(0, 4)})
    assert a._contended is False
    staged: list[object] = []
    stage = a._stage
    a._stage = lambda *args: staged.append(args) or stage(*args)  # type: ignore[method-assign]
    a.commit({0: _rows(5, 9)})
    assert staged == [] and Store(location).count() == 10


def test_a_zombies_staged_batch_is_never_carried(tmp_path: Path) -> None:
    """A batch staged under an epoch a newer claim superseded is dropped, not stored."""
    location = StoreLocation.embedded(tmp_path / "store")
    a, b, c = (TableWriter(location, ORIGIN, member=m) for m in "abc")
    a.claim([0])
    b.claim([1])
    a._contended = True
    _before_commit(a, lambda: (c.claim([0]), b.commit({1: _rows(100, 104)})))
    assert a.commit({0: _rows(0, 9)}) == []
    assert a.fenced == {0}
    assert Store(location).count() == 5
    assert offset_key(ORIGIN, 0) not in location.load().properties
    assert _carried(location) == [] and _staged(location) == []


def test_a_staged_batch_naming_a_file_outside_the_table_is_dropped(tmp_path: Path) -> None:
    """A staged row pointing outside the table's data folder is never added to the table."""
    location = StoreLocation.embedded(tmp_path / "store")
    b = TableWriter(location, ORIGIN, member="b")
    b.claim([1])
    outside = tmp_path / "elsewhere.parquet"
    outside.write_bytes(b"PAR1")
    table = location.load()
    staging = Staging(table.catalog.engine, table.catalog.name, location.identifier())  # type: ignore[attr-defined]
    assert staging.add(StagedBatch.new(ORIGIN, [StagedPart(0, 0, -1, 0, 4, 5)], [str(outside)]))
    b.commit({1: _rows(100, 104)})
    assert Store(location).count() == 5
    assert offset_key(ORIGIN, 0) not in location.load().properties
    assert _staged(location) == []


def test_racing_writers_store_every_offset_once_and_carry_each_other(tmp_path: Path) -> None:
    """Four writers of four partitions commit at once: every row stored once, offsets at each writer's last."""
    location = StoreLocation.embedded(tmp_path / "store")
    writers = [TableWriter(location, ORIGIN, member=f"w{i}") for i in range(4)]
    for i, writer in enumerate(writers):
        writer.claim([i])
    reported: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            for n in range(6):
                stored = writers[i].commit({i: _rows(n * 5, n * 5 + 4)})
                with lock:
                    reported.extend(s.rows for s in stored)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(reported) == 4 * 6 * 5 == Store(location).count()
    props = location.load().properties
    assert [props[offset_key(ORIGIN, i)] for i in range(4)] == ["29"] * 4
    assert _staged(location) == []
    assert sum(w.carried for w in writers) == len(_carried(location))


def _staging(location: StoreLocation) -> Staging:
    table = location.load()
    return Staging(table.catalog.engine, table.catalog.name, location.identifier())  # type: ignore[attr-defined]


def test_waiting_for_the_turn_is_not_a_lost_race(tmp_path: Path) -> None:
    """With commit_retries=1, a writer that lost once commits its next batches (waits are not tries)."""
    location = StoreLocation.embedded(tmp_path / "store", commit_retries=1)
    a, b = TableWriter(location, ORIGIN, member="a"), TableWriter(location, ORIGIN, member="b")
    a.claim([0])
    b.claim([1])
    _before_commit(a, lambda: b.commit({1: _rows(100, 104)}))
    with pytest.raises(StoreConflictError):
        a.commit({0: _rows(0, 9)})
    assert [s.rows for s in a.commit({0: _rows(0, 9)})] == [10]
    assert Store(location).count() == 15


def test_a_staged_batch_gone_uncarried_is_committed_by_its_writer(tmp_path: Path) -> None:
    """If another writer drops the staged row while the turn is held elsewhere, its writer commits it directly."""
    location = StoreLocation.embedded(tmp_path / "store")
    a = TableWriter(location, ORIGIN, member="a")
    a.claim([0])
    a._contended = True
    staging = _staging(location)
    assert staging.take_turn("another writer", 30.0)
    stage = a._stage

    def stage_then_vanish(*args: Any) -> Any:
        staged = stage(*args)
        staging.remove([staged.batch_id])
        return staged

    a._stage = stage_then_vanish  # type: ignore[method-assign]
    assert [s.rows for s in a.commit({0: _rows(0, 9)})] == [10]
    assert a.conflicts == 0 and Store(location).count() == 10


def test_a_commit_that_loses_keeps_batches_staged_since_its_read(tmp_path: Path) -> None:
    """A batch staged after a writer's read, valid on the newer table, survives that writer's lost race."""
    location = StoreLocation.embedded(tmp_path / "store")
    a, b, c = (TableWriter(location, ORIGIN, member=m) for m in "abc")
    c.claim([2])
    b.commit({0: _rows(0, 4)})
    waiting = c._waiting

    def meanwhile(*args: Any) -> Any:
        c._waiting = waiting  # type: ignore[method-assign]
        b.commit({0: _rows(5, 9)})  # c's read is stale now
        table = location.load()
        files = a._write_files(table, {0: _rows(10, 14)}, {0: 9})
        _staging(location).add(StagedBatch.new(ORIGIN, [StagedPart(0, 0, 9, 10, 14, 5)], [f.file_path for f in files]))
        return waiting(*args)

    c._waiting = meanwhile  # type: ignore[method-assign]
    c.commit({2: _rows(0, 4)})
    assert c.conflicts >= 1
    assert len(_carried(location)) == 1 and Store(location).count() == 20
    assert location.load().properties[offset_key(ORIGIN, 0)] == "14"


@pytest.mark.parametrize("step", ["..", ".", ""])
def test_a_staged_path_stepping_out_of_the_data_folder_is_dropped(tmp_path: Path, step: str) -> None:
    """'<table>/data/../x.parquet' (or './', '//') is never committed, even when the file exists there."""
    location = StoreLocation.embedded(tmp_path / "store")
    a, b = TableWriter(location, ORIGIN, member="a"), TableWriter(location, ORIGIN, member="b")
    b.claim([1])
    table = location.load()
    written = a._write_files(table, {0: _rows(0, 4)}, {0: -1})[0].file_path
    data = table.location().rstrip("/") + "/data/"
    name = written.rsplit("/", 1)[1]
    path = data + (f"{step}/data/{name}" if step == ".." else f"{step}/{name}")
    _staging(location).add(StagedBatch.new(ORIGIN, [StagedPart(0, 0, -1, 0, 4, 5)], [path]))
    b.commit({1: _rows(100, 104)})
    assert Store(location).count() == 5
    assert offset_key(ORIGIN, 0) not in location.load().properties


def test_a_carried_batch_is_reported_stored_after_its_snapshots_expired(tmp_path: Path) -> None:
    """The carrying snapshot expired before its writer looked: the offsets tell it was stored."""
    location = StoreLocation.embedded(tmp_path / "store")
    a, b, c = (TableWriter(location, ORIGIN, member=m) for m in "abc")
    a.claim([0])
    b.claim([1])
    c.claim([2])
    a._contended = True
    await_turn = a._await_turn

    def meanwhile(mine: Any) -> bool:
        a._await_turn = await_turn  # type: ignore[method-assign]
        b.commit({1: _rows(100, 104)})  # carries a's batch
        c.commit({2: _rows(200, 204)})
        expire(location, older_than_s=0)
        return await_turn(mine)

    a._await_turn = meanwhile  # type: ignore[method-assign]
    assert [(s.partition, s.rows) for s in a.commit({0: _rows(0, 9)})] == [(0, 10)]
    assert Store(location).count() == 20


def test_a_staged_batch_whose_file_is_gone_is_dropped_not_referenced(tmp_path: Path) -> None:
    """A staged file deleted before a commit carries it (forget removes such files) is never committed."""
    location = StoreLocation.embedded(tmp_path / "store")
    a, b = TableWriter(location, ORIGIN, member="a"), TableWriter(location, ORIGIN, member="b")
    b.claim([1])
    table = location.load()
    written = a._write_files(table, {0: _rows(0, 4)}, {0: -1})[0].file_path
    _staging(location).add(StagedBatch.new(ORIGIN, [StagedPart(0, 0, -1, 0, 4, 5)], [written]))
    Path(written.removeprefix("file://").removeprefix("file:")).unlink()
    b.commit({1: _rows(100, 104)})
    assert Store(location).count() == 5 and _staged(location) == []
    assert offset_key(ORIGIN, 0) not in location.load().properties


@pytest.mark.parametrize("group_commit", [False, True])
def test_a_retry_writes_again_the_files_removed_while_it_waited(tmp_path: Path, group_commit: bool) -> None:
    """Files deleted before a lost race's retry (forget, orphan removal) are written again, not named missing."""
    location = StoreLocation.embedded(tmp_path / "store")
    a = TableWriter(location, ORIGIN, member="a", group_commit=group_commit)  # its retry staged, or not
    b = TableWriter(location, ORIGIN, member="b")
    a.claim([0])
    b.claim([1])

    def lose_and_lose_the_files() -> None:
        b.group_commit = False  # b commits its own batch only: a's must be retried by a
        b.commit({1: _rows(100, 104)})
        assert remove_orphans(location, grace_s=0) > 0  # a's files: written, not yet committed

    _before_commit(a, lose_and_lose_the_files)
    stored = a.commit({0: _rows(0, 9)})
    assert [(s.partition, s.first, s.last, s.rows) for s in stored] == [(0, 0, 9, 10)]
    store = Store(location)
    try:  # every file the table names is read: a missing one fails the query
        assert store.sql("SELECT count(DISTINCT subject_id) AS n FROM events")[0]["n"] == 15
    finally:
        store.close()
