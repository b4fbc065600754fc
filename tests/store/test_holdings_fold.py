"""Folding the holdings' deltas off the refresh: the rows and answers unchanged, one file a bucket, the engine kept."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.table.locations import load_location_provider

from lineage import default_taxonomy
from lineage.answers import access_request
from lineage.contract.records import make_record
from lineage.errors import StoreConflictError, StoreError, StoreUnavailableError
from lineage.ingest import holdings as ingest_holdings
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation
from lineage.store import forget as store_forget
from lineage.store import holdings as store_holdings
from lineage.store.forget import column_in, forget_rows
from lineage.store.holdings import (
    FOLD_AT,
    FOLDED,
    RESETS_BUCKET,
    SOURCE,
    bucket_of,
    engine_from_table,
    fenced_only,
    fold_buckets,
    foldable,
    load_holdings,
    pinned_state,
    read_rows,
    read_state,
)
from lineage.store.tables import EVENTS
from tests.fixtures import PARTY, T0

TAX = default_taxonomy()


def _event(kind: str, minute: int, subject: str) -> dict[str, object]:
    common: dict[str, Any] = {
        "system": "app", "system_region": "CN", "occurred_at": T0 + timedelta(minutes=minute),
        "holder": PARTY["app"], "subject_id": subject, "categories": ["user.contact.email"],
    }  # fmt: skip
    if kind == "ERASED":
        return make_record("ERASED", erasure_outcome="ERASED", **common)
    return make_record("COLLECTED", purpose="essential.service", legal_basis="CONTRACT", **common)


def _ingest(location: StoreLocation, records: list[dict[str, object]], first: int) -> None:
    ing = Ingestor(location, "events", taxonomy=TAX)
    for offset, record in enumerate(records, start=first):
        assert ing.add_record(0, offset, record) is None  # type: ignore[arg-type]
    ing.flush()


def _files_by_bucket(location: StoreLocation) -> Counter[int]:
    return Counter(task.file.partition[0] for task in load_holdings(location).scan().plan_files())


def _rows(location: StoreLocation) -> list[str]:
    table = load_holdings(location)
    snapshot = table.current_snapshot()
    assert snapshot is not None
    return sorted(map(repr, read_rows(location, table, snapshot.snapshot_id).to_pylist()))


def _with_deltas(location: StoreLocation, maintainer: HoldingsMaintainer) -> str:
    """100 subjects, then refreshes adding runs to s7's bucket and erasing s7 (a reset): its bucket has 4 files."""
    _ingest(location, [_event("COLLECTED", i % 50, f"s{i}") for i in range(100)], first=0)
    maintainer.refresh()
    _ingest(location, [_event("ERASED", 60, "s7")], first=100)
    maintainer.refresh()
    for n in range(2):
        pair = [_event("COLLECTED", 61 + n, "s7"), _event("COLLECTED", 61 + n, f"s{20 + n}")]
        _ingest(location, pair, first=101 + 2 * n)
        maintainer.refresh()
    return "s7"


def _maintained(tmp_path: Path) -> tuple[StoreLocation, HoldingsMaintainer]:
    """A store in ``tmp_path`` with deltas (``_with_deltas``), and the maintainer that wrote them."""
    location = StoreLocation.embedded(tmp_path)
    maintainer = HoldingsMaintainer(location)
    _with_deltas(location, maintainer)
    return location, maintainer


def test_a_fold_leaves_every_row_and_answer_as_it_was_in_one_file_a_bucket_and_no_resets(tmp_path: Path) -> None:
    """Folding every bucket foldable: the same rows that hold, the same access answer, one file each, no reset file."""
    location = StoreLocation.embedded(tmp_path)
    subject = _with_deltas(location, HoldingsMaintainer(location))
    home = bucket_of(subject)
    assert _files_by_bucket(location)[home] == 4 and _files_by_bucket(location)[RESETS_BUCKET] == 1
    rows, props = _rows(location), dict(load_holdings(location).properties)
    as_of = T0 + timedelta(hours=3)
    answer = access_request(Store(location), subject, TAX, as_of=as_of).holdings
    table = load_holdings(location)
    state = read_state(table)
    assert state.snapshot_id is not None
    candidates = foldable(location, table, state.snapshot_id)
    assert next(iter(candidates)) == home  # most files first
    folded = fold_buckets(location, state.snapshot_id, list(candidates))
    files = _files_by_bucket(location)
    assert all(files[b] == 1 for b in candidates) and RESETS_BUCKET not in files
    assert _rows(location) == rows and dict(load_holdings(location).properties) == props
    assert access_request(Store(location), subject, TAX, as_of=as_of).holdings == answer
    held = read_rows(location, table, state.snapshot_id).to_pylist()
    assert folded.rows == sum(1 for r in held if r["kind"] == "run" and bucket_of(r["subject"]) in candidates)
    assert not foldable(location, load_holdings(location), folded.snapshot_id)


def test_a_fold_on_a_snapshot_the_table_moved_past_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    """A refresh committed after the fold's read: StoreConflictError, and the table is the refresh's."""
    location = StoreLocation.embedded(tmp_path)
    maintainer = HoldingsMaintainer(location)
    subject = _with_deltas(location, maintainer)
    read_at = read_state(load_holdings(location)).snapshot_id
    assert read_at is not None
    _ingest(location, [_event("COLLECTED", 80, "s40")], first=200)
    after = maintainer.refresh().snapshot
    with pytest.raises(StoreConflictError, match="nothing was committed"):
        fold_buckets(location, read_at, [bucket_of(subject)])
    assert read_state(load_holdings(location)).snapshot_id == after


def test_the_maintainer_folds_in_time_to_spare_and_its_next_refresh_goes_on_from_its_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No time or too slow a fold: nothing folded. With time: every bucket that fits, then no restore."""
    location = StoreLocation.embedded(tmp_path)
    maintainer = HoldingsMaintainer(location)
    subject = _with_deltas(location, maintainer)
    before = read_state(load_holdings(location)).snapshot_id

    def no_look(*_: object) -> None:
        raise AssertionError("the table was read with no time to fold")

    with monkeypatch.context() as patch:  # a refresh that overran: not even a look at the table
        patch.setattr("lineage.ingest.holdings.try_load_holdings", no_look)
        assert maintainer.fold(0.0) is None and maintainer.fold(-2.0) is None
    maintainer.fold_rows_per_s = 1e-6  # any bucket would take ages
    assert maintainer.fold(5.0) is None and read_state(load_holdings(location)).snapshot_id == before
    maintainer.fold_rows_per_s = 300_000.0
    folded = maintainer.fold(30.0)
    assert folded is not None and folded.buckets[0] == bucket_of(subject)  # most files first
    files = _files_by_bucket(location)
    assert all(files[b] == 1 for b in folded.buckets) and RESETS_BUCKET not in files
    assert maintainer.fold(30.0) is None  # nothing left to fold

    def no_restore(*_: object) -> None:
        raise AssertionError("the engine was restored from the table")

    monkeypatch.setattr("lineage.ingest.holdings.engine_from_table", no_restore)
    _ingest(location, [_event("COLLECTED", 90, subject)], first=300)
    assert maintainer.refresh().events == 1
    monkeypatch.undo()
    kept = _rows(location)
    table = load_holdings(location)
    restored = engine_from_table(table.scan().to_arrow(), None)
    assert sum(1 for r in restored.runs() if r.subject == subject) == 4
    maintainer.refresh(rebuild=True)
    assert _rows(location) == kept


def test_a_forget_between_the_look_and_the_fold_leaves_the_fold_undone_and_the_maintainer_going(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table moved after foldable(): fold_buckets refuses before reading, and fold() returns None."""
    location, maintainer = _maintained(tmp_path)
    looked = store_holdings.foldable

    def then_forget(*args: Any) -> dict[int, int]:
        found = looked(*args)
        forget_rows(location, ["s30"], digest=lambda i: f"d-{i}", grace_s=0.0)  # its snapshots expired at once
        return found

    monkeypatch.setattr("lineage.ingest.holdings.foldable", then_forget)
    assert maintainer.fold(30.0) is None
    monkeypatch.undo()
    _ingest(location, [_event("COLLECTED", 80, "s41")], first=300)
    assert maintainer.refresh().events == 1
    assert maintainer.fold(30.0) is not None
    kept = _rows(location)
    assert not any("'s30'" in r for r in kept)
    maintainer.refresh(rebuild=True)
    assert _rows(location) == kept


def test_a_bucket_one_write_split_into_several_files_is_not_folded_again(tmp_path: Path) -> None:
    """Files of one commit (a bucket past the target file size) are no delta: foldable() leaves them."""
    location = StoreLocation.embedded(tmp_path)
    maintainer = HoldingsMaintainer(location)
    _ingest(location, [_event("COLLECTED", i % 50, f"s{i}") for i in range(3000)], first=0)
    maintainer.refresh()
    with load_holdings(location).transaction() as tx:  # stands for a bucket past pyiceberg's 512 MB target
        tx.set_properties({"write.target-file-size-bytes": "20000"})
    for n in range(FOLD_AT - 1):
        _ingest(location, [_event("COLLECTED", 60 + n, f"s{i}") for i in range(0, 3000, 20)], first=3000 + 200 * n)
        maintainer.refresh()
    folded = maintainer.fold(30.0)
    assert folded is not None
    files = _files_by_bucket(location)
    assert any(files[b] > 1 for b in folded.buckets)  # each folded bucket written as several files
    table = load_holdings(location)
    snapshot = read_state(table).snapshot_id
    assert snapshot is not None
    assert foldable(location, table, snapshot) == {}
    assert maintainer.fold(30.0) is None


def test_a_fold_names_the_events_snapshot_its_rows_were_made_from_not_a_forget_s(tmp_path: Path) -> None:
    """After a forget (naming the newest events snapshot) a fold claims no events snapshot: a pinned read computes."""
    location, maintainer = _maintained(tmp_path)
    _ingest(location, [_event("COLLECTED", 70, "new1")], first=400)  # stored, not applied
    forget_rows(location, ["s30"], digest=lambda i: f"d-{i}", grace_s=0.0)
    events_snapshot = location.load().current_snapshot()
    assert events_snapshot is not None
    table = load_holdings(location)
    state = read_state(table)
    assert state.snapshot_id is not None and state.source == events_snapshot.snapshot_id
    folded = fold_buckets(location, state.snapshot_id, list(foldable(location, table, state.snapshot_id)))
    summary = load_holdings(location).snapshot_by_id(folded.snapshot_id).summary  # type: ignore[union-attr]
    assert summary is not None and SOURCE not in summary.additional_properties
    assert FOLDED in summary.additional_properties
    _ingest(location, [_event("COLLECTED", 71, "new2")], first=401)
    maintainer.refresh()
    pinned = Store(location, snapshot=events_snapshot.snapshot_id)
    report = access_request(pinned, "new1", TAX, as_of=T0 + timedelta(hours=3))
    assert len(report.holdings) == 1


def test_deltas_another_process_committed_are_folded_by_a_maintainer_that_had_nothing_to_fold(tmp_path: Path) -> None:
    """The plan is the table's, not the maintainer's: a second maintainer's refresh leaves deltas ours folds."""
    location = StoreLocation.embedded(tmp_path)
    ours = HoldingsMaintainer(location)
    _with_deltas(location, ours)
    assert ours.fold(30.0) is not None and ours.fold(30.0) is None  # all folded, nothing left
    for n in range(FOLD_AT - 1):  # e.g. `lineage holdings`: deltas ours did not write
        pair = [_event("COLLECTED", 85 + n, "s5"), _event("COLLECTED", 85 + n, "s6")]
        _ingest(location, pair, first=300 + 2 * n)
        HoldingsMaintainer(location).refresh()
    assert ours.refresh().snapshot is None  # up to date: its engine is not the table's now
    folded = ours.fold(30.0)
    assert folded is not None and set(folded.buckets) == {bucket_of("s5"), bucket_of("s6")}


def test_a_fold_before_any_holdings_says_nothing_and_one_with_no_time_lets_its_rate_recover(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No holdings table yet: None and no warning. Nothing fits: None, and the rate creeps back up by a tenth."""
    location = StoreLocation.embedded(tmp_path)
    maintainer = HoldingsMaintainer(location)
    _ingest(location, [_event("COLLECTED", 1, "s1")], first=0)
    with caplog.at_level(logging.INFO, logger="lineage.ingest.holdings"):
        assert maintainer.fold(30.0) is None
    assert not caplog.records
    _with_deltas(location, maintainer)
    maintainer.fold_rows_per_s = 1.0  # as if one fold had crawled
    assert maintainer.fold(1.0) is None
    assert maintainer.fold_rows_per_s == pytest.approx(1.1)


def test_a_store_error_that_will_not_pass_is_raised_by_a_fold_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fold failing on a table that did not move raises (the loop exits 2); a retryable one is a log line."""
    location, maintainer = _maintained(tmp_path)

    def broken(*_: object) -> None:
        raise StoreError("a data file of the holdings is unreadable", path="here")

    def unavailable(*_: object) -> None:
        raise StoreUnavailableError("the object store did not answer", path="here")

    monkeypatch.setattr("lineage.ingest.holdings.fold_buckets", broken)
    with pytest.raises(StoreError, match="unreadable"):
        maintainer.fold(30.0)
    monkeypatch.setattr("lineage.ingest.holdings.fold_buckets", unavailable)
    assert maintainer.fold(30.0) is None


def _files_holding(location: StoreLocation, subject: str) -> list[str]:
    """Every Parquet file under the holdings table, committed or not, with a row of ``subject``."""
    root = Path(load_holdings(location).location().removeprefix("file://"))
    return [
        str(f)
        for f in root.rglob("*.parquet")
        if subject in pq.read_table(f, columns=["subject"])["subject"].to_pylist()
    ]


def test_a_forget_committed_while_a_fold_works_is_not_undone_and_its_files_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forget after the fold read the rows: refused as a race, the person forgotten, no file of theirs written."""
    location, _ = _maintained(tmp_path)
    table = load_holdings(location)
    read_at = read_state(table).snapshot_id
    assert read_at is not None
    buckets = list(foldable(location, table, read_at))
    assert bucket_of("s7") in buckets
    step = store_holdings._kept_rows

    def then_forget(*args: Any) -> Any:
        kept = step(*args)
        forget_rows(location, ["s7"], digest=lambda i: f"d-{i}", grace_s=0.0)
        return kept

    monkeypatch.setattr(store_holdings, "_kept_rows", then_forget)
    with pytest.raises(StoreConflictError, match="nothing was committed"):
        fold_buckets(location, read_at, buckets)
    assert not any("'s7'" in r for r in _rows(location))
    assert _files_holding(location, "s7") == []


def test_a_forget_committed_while_a_refresh_writes_leaves_no_file_of_the_person(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh's commit refused after a forget: the rows it wrote go with it, and its retry keeps the person out."""
    location, maintainer = _maintained(tmp_path)
    _ingest(location, [_event("COLLECTED", 90, "s7"), _event("COLLECTED", 90, "s8")], first=500)
    changed, discard = store_holdings._changed_rows, getattr(store_holdings, "_discard", None)
    forgot: list[bool] = []
    discarded: list[list[str]] = []

    def then_forget(*args: Any) -> Any:
        rows = changed(*args)
        if not forgot:
            forgot.append(True)
            forget_rows(location, ["s7"], digest=lambda i: f"d-{i}", grace_s=0.0)
        return rows

    def recorded(io: Any, files: Any) -> None:
        files = list(files)
        discarded.extend(pq.read_table(f.file_path.removeprefix("file://"))["subject"].to_pylist() for f in files)
        discard(io, files)  # type: ignore[misc]

    monkeypatch.setattr(store_holdings, "_changed_rows", then_forget)
    monkeypatch.setattr(store_holdings, "_discard", recorded, raising=False)
    maintainer.refresh()
    assert _files_holding(location, "s7") == []
    assert any("s7" in subjects for subjects in discarded)  # the first write held s7, and lost to the forget
    assert not any("'s7'" in r for r in _rows(location)) and any("'s8'" in r for r in _rows(location))


def _unnamed(location: StoreLocation) -> list[str]:
    """The Parquet files under the holdings table that no snapshot names."""
    table = load_holdings(location)
    named = {
        entry.data_file.file_path.removeprefix("file://")
        for snapshot in table.metadata.snapshots
        for manifest in snapshot.manifests(table.io)
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False)
    }
    root = Path(table.location().removeprefix("file://"))
    return sorted(str(f) for f in root.rglob("*.parquet") if str(f) not in named)


@pytest.mark.parametrize("write", ["fold", "rebuild", "first"])
def test_a_commit_refused_after_its_files_were_written_leaves_none_of_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write: str
) -> None:
    """Another snapshot lands between a write and its commit: refused, and no file of it stays unnamed."""
    if write == "first":
        location, maintainer = StoreLocation.embedded(tmp_path), None
        _ingest(location, [_event("COLLECTED", i, f"s{i}") for i in range(20)], first=0)
    else:
        location, maintainer = _maintained(tmp_path)
        assert _unnamed(location) == []
    lost: list[int] = []

    class LosingOnce(store_holdings._Transaction):
        def commit_transaction(self) -> Any:
            if not lost:
                lost.append(sum(len(p._added_data_files) for p in self._snapshot_producers))
                table = load_holdings(location, create=True)
                table.append(pa.Table.from_pylist([], schema=table.schema().as_arrow()))  # a snapshot lands first
            return super().commit_transaction()

    monkeypatch.setattr(store_holdings, "_Transaction", LosingOnce)
    if write == "fold":
        table = load_holdings(location)
        read_at = read_state(table).snapshot_id
        assert read_at is not None
        with pytest.raises(StoreConflictError, match="nothing was committed"):
            fold_buckets(location, read_at, list(foldable(location, table, read_at)))
    else:  # the maintainer's retry then commits
        (maintainer or HoldingsMaintainer(location)).refresh(rebuild=write == "rebuild")
    assert lost and lost[0] > 0
    assert _unnamed(location) == []


@pytest.mark.parametrize("write", ["refresh", "rebuild"])
def test_a_write_failing_midway_leaves_none_of_the_files_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write: str
) -> None:
    """A file of a refresh or a rebuild fails to write (a full disk): a store error; the files other parts wrote go."""
    location, maintainer = _maintained(tmp_path)
    before = read_state(load_holdings(location)).snapshot_id
    _ingest(location, [_event("COLLECTED", 95, f"s{i}") for i in range(60)], first=600)  # every bucket touched
    real, wrote = store_holdings.write_file, []

    def failing_second(io: Any, metadata: Any, tasks: Any) -> Any:
        (task,) = tasks
        if task.task_id == 1:
            locations = load_location_provider(metadata.location, metadata.properties)
            name = task.generate_data_file_filename("parquet")
            with io.new_output(locations.new_data_location(name, task.partition_key)).create() as begun:
                begun.write(b"PAR1")  # where pyiceberg writes it; then the disk is full
            raise OSError("No space left on device")
        files = list(real(io, metadata, iter([task])))
        wrote.extend(files)
        return files

    monkeypatch.setattr(store_holdings, "write_file", failing_second)
    with pytest.raises(StoreError):
        maintainer.refresh(rebuild=write == "rebuild")
    assert wrote  # the first task's file was written (its result is taken before the failure is seen)
    assert _unnamed(location) == []
    assert read_state(load_holdings(location)).snapshot_id == before


def test_a_forget_committed_while_a_refresh_reads_its_files_is_a_race_lost_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forget expires the snapshot a refresh is reading (a file gone): no corrupt store, the retry commits."""
    location, maintainer = _maintained(tmp_path)
    _ingest(location, [_event("COLLECTED", 90, "s7"), _event("COLLECTED", 90, "s8")], first=500)
    changed, forgot = store_holdings._changed_rows, []

    def forget_first(*args: Any) -> Any:
        if not forgot:  # before its first read of the stored files
            forgot.append(forget_rows(location, ["s7"], digest=lambda i: f"d-{i}", grace_s=0.0))
        return changed(*args)

    monkeypatch.setattr(store_holdings, "_changed_rows", forget_first)
    maintainer.refresh()
    assert forgot and forgot[0].holdings_rows  # the forget landed inside the refresh
    assert not any("'s7'" in r for r in _rows(location)) and any("'s8'" in r for r in _rows(location))
    assert _unnamed(location) == []


def _forgetting_first(location: StoreLocation, subject: str, real: Any, forgot: list[Any]) -> Any:
    """``real``, called once ``subject`` is forgotten (the first call only); the forget's result goes to ``forgot``."""

    def call(*args: Any, **kwargs: Any) -> Any:
        if not forgot:
            forgot.append(forget_rows(location, [subject], digest=lambda i: f"d-{i}", grace_s=0.0))
        return real(*args, **kwargs)

    return call


def test_a_forget_committed_while_a_refresh_reads_new_events_is_a_race_lost_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forget expires the events snapshot a refresh was about to read: no corrupt store, the retry applies it."""
    location, maintainer = _maintained(tmp_path)
    _ingest(location, [_event("COLLECTED", 90, "s7"), _event("COLLECTED", 90, "s8")], first=500)
    forgot: list[Any] = []  # after the refresh chose its events snapshot, before it pins and reads it
    monkeypatch.setattr(ingest_holdings, "Store", _forgetting_first(location, "s7", Store, forgot))
    maintainer.refresh()
    assert forgot and forgot[0].events_rows  # the forget landed inside the refresh
    assert not any("'s7'" in r for r in _rows(location)) and any("'s8'" in r for r in _rows(location))
    assert _unnamed(location) == []


def test_a_forget_of_events_a_refresh_read_but_had_not_written_keeps_the_person_out_of_its_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person only in events a refresh read is forgotten before it writes: its commit fails, the retry omits them."""
    location, maintainer = _maintained(tmp_path)
    _ingest(location, [_event("COLLECTED", 90, "new1"), _event("COLLECTED", 90, "s8")], first=500)
    forgot: list[Any] = []  # the events read and applied, the holdings not written yet
    write = _forgetting_first(location, "new1", ingest_holdings.write_holdings, forgot)
    monkeypatch.setattr(ingest_holdings, "write_holdings", write)
    maintainer.refresh()
    assert forgot and forgot[0].events_rows == 1 and forgot[0].holdings_rows == 0
    assert not any("'new1'" in r for r in _rows(location)) and any("'s8'" in r for r in _rows(location))
    events, holdings = location.load(), load_holdings(location)
    assert events.snapshot_by_id(int(holdings.properties[SOURCE])) is not None  # not the expired one read
    assert maintainer.refresh().snapshot is None  # up to date
    assert not any("'new1'" in r for r in _rows(location))


def test_a_forget_committed_while_a_maintainer_restores_its_state_is_a_race_lost_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new maintainer reads its state from holdings a forget then expires: the retry reads the forget's."""
    location, _ = _maintained(tmp_path)
    _ingest(location, [_event("COLLECTED", 90, "s7"), _event("COLLECTED", 90, "s8")], first=500)
    forgot: list[Any] = []  # the holdings snapshot chosen, its files not read yet
    read = _forgetting_first(location, "s7", ingest_holdings.read_batches, forgot)
    monkeypatch.setattr(ingest_holdings, "read_batches", read)
    HoldingsMaintainer(location).refresh()
    assert forgot and forgot[0].holdings_rows and forgot[0].snapshots_expired
    assert not any("'s7'" in r for r in _rows(location)) and any("'s8'" in r for r in _rows(location))


def test_a_forget_between_a_refresh_s_look_at_the_holdings_and_its_read_of_the_events_fences_it_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refresh reads the holdings, then the events; a forget landing between those fails its commit."""
    location, maintainer = _maintained(tmp_path)
    _ingest(location, [_event("COLLECTED", 90, "new1"), _event("COLLECTED", 90, "s8")], first=500)
    history_reached, history_go, forgot = threading.Event(), threading.Event(), []
    drop, offsets = store_forget.drop_history, ingest_holdings.event_offsets

    def history_later(*args: Any, **kwargs: Any) -> Any:  # the forget's expiry comes after the refresh
        history_reached.set()
        history_go.wait(120)
        return drop(*args, **kwargs)

    def forget_after_the_events(table: Any) -> Any:
        if not forgot:  # the events table loaded (holding new1); the forget's deletes land now
            forgot.append(threading.Thread(target=forget_rows, args=(location, ["new1"]),
                                           kwargs={"digest": lambda i: f"d-{i}", "grace_s": 0.0}))  # fmt: skip
            forgot[0].start()
            assert history_reached.wait(120)
        return offsets(table)

    monkeypatch.setattr(store_forget, "drop_history", history_later)
    monkeypatch.setattr(ingest_holdings, "event_offsets", forget_after_the_events)
    maintainer.refresh()
    history_go.set()
    forgot[0].join(120)
    assert not any("'new1'" in r for r in _rows(location)) and any("'s8'" in r for r in _rows(location))


def test_a_resumed_forget_fences_out_a_refresh_that_read_the_events_its_killed_run_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forget killed after its events delete, resumed before a refresh that read them writes: the person stays out."""
    location, maintainer = _maintained(tmp_path)
    _ingest(location, [_event("COLLECTED", 90, "new1"), _event("COLLECTED", 90, "s8")], first=500)
    write, resumed = ingest_holdings.write_holdings, []

    def killed_then_resumed(*args: Any, **kwargs: Any) -> Any:
        if not resumed:  # the refresh read and applied the events, and has not written
            store_forget.delete_rows(location, EVENTS, column_in("subject_id", ["new1"]))  # the killed run's step
            resumed.append(forget_rows(location, ["new1"], digest=lambda i: f"d-{i}", resumed=True, grace_s=0.0))
        return write(*args, **kwargs)

    monkeypatch.setattr(ingest_holdings, "write_holdings", killed_then_resumed)
    maintainer.refresh()
    assert resumed and resumed[0].events_rows == 0  # the resumed run found no events left to delete
    assert not any("'new1'" in r for r in _rows(location)) and any("'s8'" in r for r in _rows(location))


def test_a_forget_before_any_holdings_were_written_leaves_readers_computing_them_and_the_first_write_whole(
    tmp_path: Path,
) -> None:
    """A fence on a holdings table no refresh wrote yet: readers compute the holdings, the next refresh writes all."""
    location = StoreLocation.embedded(tmp_path)
    _ingest(location, [_event("COLLECTED", 90, "p1"), _event("COLLECTED", 90, "p2")], first=0)
    load_holdings(location, create=True)  # as a first refresh stopped before its commit leaves it
    forget_rows(location, ["p1"], digest=lambda i: f"d-{i}", grace_s=0.0)
    table = load_holdings(location)
    assert table.current_snapshot() is not None and fenced_only(table)
    assert pinned_state(location, None).holdings_snapshot is None  # computed in memory, as with none
    assert access_request(Store(location), "p2", TAX).holdings
    done = HoldingsMaintainer(location).refresh()
    assert done.snapshot is not None and pinned_state(location, None).holdings_snapshot == done.snapshot
    assert any("'p2'" in r for r in _rows(location)) and not any("'p1'" in r for r in _rows(location))


def test_a_fence_on_holdings_of_the_first_layout_is_not_read_as_no_holdings(tmp_path: Path) -> None:
    """A table with rows but no layout property (the first layout), fenced by a forget: still holdings, not none."""
    location, _ = _maintained(tmp_path)
    with load_holdings(location).transaction() as tx:
        tx.remove_properties(store_holdings.FORMAT)  # as the first layout wrote it
    _ingest(location, [_event("COLLECTED", 90, "new1")], first=500)
    forget_rows(location, ["new1"], digest=lambda i: f"d-{i}", grace_s=0.0)
    table = load_holdings(location)
    assert table.current_snapshot().summary.get(store_holdings.FENCE)  # type: ignore[union-attr]
    assert not fenced_only(table)
