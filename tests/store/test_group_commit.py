"""Group commit: a writer's commit carries the batches other writers staged after losing a race."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from lineage.store import Store, StoreLocation, TableWriter
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
