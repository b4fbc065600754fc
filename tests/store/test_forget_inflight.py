"""Forget beside a consumer that has written a file holding the person and not yet committed it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import lineage.store.forget as forget
from lineage.store import Store, StoreLocation, TableWriter
from lineage.store.forget import forget_rows
from tests.store.test_fencing import _rows
from tests.store.test_group_commit import _before_commit

ORIGIN = "inflight.topic"
PERSON = "user-7"  # in both writers' batches: offset 7 of each


def _digest(identifier: str) -> str:
    return f"digest-{identifier}"


def test_a_consumers_file_in_flight_is_spared_and_the_rows_it_brings_are_forgotten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The young file holding the person is not deleted under the consumer; once committed, its rows go too."""
    location = StoreLocation.embedded(tmp_path / "store")
    a, b = TableWriter(location, ORIGIN, member="a"), TableWriter(location, ORIGIN, member="b")
    a.claim([0])
    b.claim([1])
    b.commit({1: _rows(0, 9)})  # the person's first event, stored

    spared, committed, done = threading.Event(), threading.Event(), threading.Event()
    wait = forget._wait_out
    written: list[Path] = []  # a's file, written and not yet committed when forget begins
    in_flight: list[bool] = []

    def after_a_commits(seconds: float) -> None:
        in_flight.append(bool(written) and all(p.exists() for p in written))
        spared.set()
        assert committed.wait(60)  # the consumer commits while forget waits out the grace
        wait(seconds)

    monkeypatch.setattr(forget, "_wait_out", after_a_commits)
    found: list[int] = []

    def forget_the_person() -> None:
        found.append(forget_rows(location, [PERSON], digest=_digest, grace_s=2.0).events_rows)
        done.set()

    runner = threading.Thread(target=forget_the_person)
    # a has written its file (holding the person's second event) and is about to commit it
    _before_commit(a, lambda: (written.extend(_uncommitted(location)), runner.start(), spared.wait(60)))
    stored = a.commit({0: _rows(5, 9)})
    committed.set()
    assert done.wait(120)
    runner.join(60)
    assert in_flight == [True] and [(s.partition, s.first, s.last) for s in stored] == [(0, 5, 9)]
    store = Store(location)
    try:  # every file the table names is read: a missing one fails the query
        subjects = [r["subject_id"] for r in store.sql("SELECT subject_id FROM events ORDER BY subject_id")]
    finally:
        store.close()
    assert PERSON not in subjects and len(subjects) == 10 + 5 - 2
    assert found == [2]  # both of the person's events, the one brought by the file in flight too


def _uncommitted(location: StoreLocation) -> list[Path]:
    """The events table's data files no snapshot refers to (a consumer's, written and not yet committed)."""
    table = location.load()
    referenced = {f.file.file_path.removeprefix("file://") for f in table.scan().plan_files()}
    return [p for p in Path(location.warehouse).rglob("*.parquet") if str(p) not in referenced]
