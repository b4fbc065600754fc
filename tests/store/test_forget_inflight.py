"""Forget beside a consumer that has written a file holding the person and not yet committed it."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import lineage.store.forget as forget
from lineage.answers.forget import forget_person
from lineage.errors import LineageError
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.store import Store, StoreLocation, TableWriter
from lineage.store.certificate import STARTED, certificates
from lineage.store.forget import forget_rows
from tests.store.test_fencing import _rows
from tests.store.test_group_commit import _before_commit

ORIGIN = "inflight.topic"
PERSON = "user-7"  # in both writers' batches: offset 7 of each
GRACE = 600.0  # the consumer's file is seconds old at most, even on a loaded machine


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
    written: list[Path] = []  # a's file, written and not yet committed when forget begins
    in_flight: list[bool] = []

    def after_a_commits(seconds: float) -> None:
        in_flight.append(bool(written) and all(p.exists() for p in written))
        spared.set()
        # the consumer commits while forget waits out the grace (not waited here: once committed,
        # the file is no orphan and the next pass takes the rows it brought)
        assert committed.wait(60) and 0 < seconds <= GRACE

    monkeypatch.setattr(forget, "_wait_out", after_a_commits, raising=False)  # (raising: for the parent commit)
    found: list[int] = []

    def forget_the_person() -> None:
        found.append(forget_rows(location, [PERSON], digest=_digest, grace_s=GRACE).events_rows)
        done.set()

    runner = threading.Thread(target=forget_the_person)
    # a has written its file (holding the person's second event) and is about to commit it
    _before_commit(a, lambda: (written.extend(_uncommitted(location)), runner.start(), _first(spared, done)))
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


def _first(*events: threading.Event) -> None:
    """Wait until one of ``events`` is set (forget spared the file, or finished without sparing it)."""
    deadline = time.monotonic() + 120
    while not any(e.is_set() for e in events):
        assert time.monotonic() < deadline, "forget neither spared the file nor finished"
        events[0].wait(0.05)


def _uncommitted(location: StoreLocation) -> list[Path]:
    """The events table's data files no snapshot refers to (a consumer's, written and not yet committed)."""
    table = location.load()
    referenced = {f.file.file_path.removeprefix("file://") for f in table.scan().plan_files()}
    return [p for p in Path(location.warehouse).rglob("*.parquet") if str(p) not in referenced]


def test_a_consumer_writing_through_every_pass_leaves_the_forget_begun_not_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new file holding the person before each pass: forget stops in one line, never certified done."""
    location = StoreLocation.embedded(tmp_path / "store")
    b = TableWriter(location, ORIGIN, member="b")
    b.claim([1])
    b.commit({1: _rows(0, 9)})
    a = TableWriter(location, ORIGIN, member="a")
    a.claim([0])
    writes = _rows(5, 9)

    def another_file(seconds: float) -> None:  # a consumer's next file, written and not yet committed
        list(a._write_files(location.load(), {0: writes}, {0: 4}))

    monkeypatch.setattr(forget, "_wait_out", another_file, raising=False)
    another_file(0)
    with pytest.raises(LineageError) as refused:
        forget_person(Store(location), [PERSON], case_ref="C-9", digest=_digest, kafka_bound="-", grace_s=GRACE,
                      refresh_holdings=HoldingsMaintainer(location).refresh)  # fmt: skip
    assert "run forget again with the same case" in str(refused.value) and PERSON not in str(refused.value)
    found = certificates(location, [_digest(PERSON)])
    assert [c.status for c in found] == [STARTED]  # "begun, not finished": never "done"


def test_grace_zero_removes_a_file_holding_the_person_whatever_its_clock_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--grace 0 (no writer runs): an orphan holding the person dated an hour ahead goes at once, no wait."""
    location = StoreLocation.embedded(tmp_path / "store")
    b = TableWriter(location, ORIGIN, member="b")
    b.claim([1])
    b.commit({1: _rows(0, 9)})
    a = TableWriter(location, ORIGIN, member="a")
    a.claim([0])
    list(a._write_files(location.load(), {0: _rows(5, 9)}, {0: 4}))  # a killed writer's file
    (orphan,) = _uncommitted(location)
    ahead = time.time() + 3600  # as a file system whose clock runs ahead (an S3 server's) dates it
    os.utime(orphan, (ahead, ahead))

    def no_wait(seconds: float) -> None:
        raise AssertionError(f"forget waited {seconds} s with grace 0")

    monkeypatch.setattr(forget, "_wait_out", no_wait, raising=False)
    found = forget_rows(location, [PERSON], digest=_digest, grace_s=0.0)
    assert found.events_rows == 1 and not orphan.exists()
