"""The holdings table in buckets: a refresh appends what changed to the buckets it touched, and equals a rebuild."""

from __future__ import annotations

import logging
from dataclasses import astuple
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lineage import Codec, default_taxonomy
from lineage.answers import access_request, breach_impact, retention_register
from lineage.contract.records import make_record
from lineage.holdings import HoldingsEngine, event_from_record
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation
from lineage.store.holdings import (
    APPLIED,
    BUCKETS,
    FLOWS_BUCKET,
    FORMAT,
    HOLDINGS,
    HOLDINGS_COLUMNS,
    IDENTITY_BUCKET,
    MAX_FILES,
    RESETS_BUCKET,
    SOURCE,
    _batches,
    bucket_of,
    current_rows,
    engine_from_table,
    holdings_arrow,
    holdings_snapshot_for,
    load_holdings,
    read_rows,
)
from lineage.store.tables import iceberg_schema
from lineage.testing import MemorySink
from lineage.world.organisations import build
from lineage.world.sim import WorldSize, emit
from tests.fixtures import PARTY, T0

TAX = default_taxonomy()


def _collect(minute: int, subject: str) -> dict[str, object]:
    return make_record("COLLECTED", system="app", system_region="CN", occurred_at=T0 + timedelta(minutes=minute),
                       holder=PARTY["app"], subject_id=subject, categories=["user.contact.email"],
                       purpose="essential.service", legal_basis="CONTRACT")  # fmt: skip


def _ingest(location: StoreLocation, records: list[dict[str, object]], first: int) -> None:
    ing = Ingestor(location, "events", taxonomy=TAX)
    for offset, record in enumerate(records, start=first):
        assert ing.add_record(0, offset, record) is None  # type: ignore[arg-type]
    ing.flush()


def _files(location: StoreLocation) -> dict[str, int]:
    """The current holdings snapshot's data files, each with its bucket."""
    table = load_holdings(location)
    return {task.file.file_path: task.file.partition[0] for task in table.scan().plan_files()}


def _written(location: StoreLocation, since: int | None) -> dict[str, int]:
    """The data files and records added and deleted by the holdings snapshots after ``since`` (a refresh's)."""
    table = load_holdings(location)
    snapshot = table.current_snapshot()
    out = {"added-data-files": 0, "deleted-data-files": 0, "added-records": 0, "deleted-records": 0}
    while snapshot is not None and snapshot.snapshot_id != since:
        assert snapshot.summary is not None
        for key in out:
            out[key] += int(snapshot.summary.additional_properties.get(key, 0))
        parent = snapshot.parent_snapshot_id
        snapshot = None if parent is None else table.snapshot_by_id(parent)
    return out


def _rows(location: StoreLocation) -> list[tuple[Any, ...]]:
    """Every row of the current holdings snapshot, sorted (None first in each column)."""
    table = load_holdings(location)
    snapshot = table.current_snapshot()
    assert snapshot is not None
    rows = read_rows(location, table, snapshot.snapshot_id).to_pylist()
    return sorted((tuple(r.values()) for r in rows), key=lambda r: tuple((v is not None, str(v)) for v in r))


def test_a_refresh_touching_one_subject_appends_a_file_to_its_bucket_alone(tmp_path: Path) -> None:
    """One new event of one subject adds one file, in its bucket, of its new run alone; every file is kept."""
    location = StoreLocation.embedded(tmp_path)
    maintainer = HoldingsMaintainer(location)
    _ingest(location, [_collect(i % 50, f"s{i}") for i in range(300)], first=0)
    first = maintainer.refresh().snapshot
    before = _files(location)
    assert set(before.values()) == set(range(BUCKETS))  # 300 subjects in every bucket; no flows, no links
    _ingest(location, [_collect(60, "s7")], first=300)
    maintainer.refresh()
    after = _files(location)
    assert set(before) <= set(after)
    assert [b for f, b in after.items() if f not in before] == [bucket_of("s7")]
    assert _written(location, first) == {
        "added-data-files": 1, "deleted-data-files": 0, "added-records": 1, "deleted-records": 0
    }  # fmt: skip
    kept = _rows(location)
    maintainer.refresh(rebuild=True)
    assert kept == _rows(location)


def _world(subjects: int) -> tuple[list[bytes], list[str], list[str]]:
    """The simulated organisations' encoded events in time order, a few people, and the holders."""
    plans, _ = build(WorldSize(subjects=subjects, days=365), TAX)
    sink = MemorySink()
    emit(plans, sink, TAX)
    people = [p.adults[i] for p in plans for i in (0, len(p.adults) // 2)]
    holders = sorted({e.fields["recipient"].name for p in plans for e in p.events if "recipient" in e.fields})
    return [m.value for m in sink.messages], people, holders


def _answers(location: StoreLocation, people: list[str], holders: list[str]) -> dict[str, Any]:
    store = Store(location)
    end = WorldSize(subjects=1, days=1).end
    return {
        "access": [access_request(store, p, TAX, end) for p in people],
        "breach": breach_impact(store, holders[:2], end - timedelta(days=90), end, TAX, aware_at=end),
        "retention": retention_register(store, end),
    }


def test_refreshes_in_buckets_over_a_generated_history_equal_a_full_rebuild(tmp_path: Path) -> None:
    """A year stored in parts (one partition late), refreshes touching every bucket or a few: equal to a rebuild.

    After each refresh, every data file is in the table's order (kind, then subject): the merge of
    stored and new rows keeps a person's lookup to a few row groups.
    """
    values, people, holders = _world(25)
    location = StoreLocation.embedded(tmp_path)
    maintainer = HoldingsMaintainer(location)
    ingestor = Ingestor(location, "events", taxonomy=TAX)
    halves, chunk = (values[0::2], values[1::2]), len(values) // 16
    appended = folded = reset = 0
    for k in range(-(-len(halves[0]) // chunk) + 1):
        for part, index in ((0, k), (1, k - 1)):  # partition 1 a chunk behind: its events are often late
            for offset in range(max(0, index) * chunk, min((index + 1) * chunk, len(halves[part]))):
                assert ingestor.add(part, offset, halves[part][offset]) is None
        ingestor.flush()
        previous = load_holdings(location, create=True).current_snapshot()
        before = _files(location) if previous is not None else {}
        done = maintainer.refresh()
        written = _written(location, None if previous is None else previous.snapshot_id)
        total = sum(task.file.record_count for task in load_holdings(location).scan().plan_files())
        after = _files(location)
        appended += previous is not None and 0 < written["added-records"] < total
        folded += any(b >= 0 and f not in after for f, b in before.items())  # a bucket's files made one
        reset += RESETS_BUCKET in after.values()
        assert done.snapshot is None or written["added-data-files"] > 0
        for task in load_holdings(location).scan().plan_files():
            rows = pq.read_table(task.file.file_path.removeprefix("file://"), columns=["kind", "subject"])
            order = list(zip(rows.column("kind").to_pylist(), rows.column("subject").to_pylist(), strict=True))
            assert order == sorted(order, key=lambda r: (r[0], r[1] is None, r[1] or ""))
    assert appended > 0 and folded > 0 and reset > 0  # deltas, folds and resets were all taken
    kept, answers = _rows(location), _answers(location, people, holders)
    HoldingsMaintainer(location).refresh(rebuild=True)
    assert kept == _rows(location)
    assert _answers(location, people, holders) == answers


def _forty_stored_then_dropped(location: StoreLocation) -> list[tuple[Any, ...]]:
    """Forty people collected and their holdings kept; the rows, then the holdings table dropped."""
    _ingest(location, [_collect(i, f"s{i}") for i in range(40)], first=0)
    HoldingsMaintainer(location).refresh()
    rows = _rows(location)
    location.catalog().drop_table(location.identifier(HOLDINGS))
    return rows


def _engine_of(location: StoreLocation) -> HoldingsEngine:
    """An engine with every stored event applied."""
    engine = HoldingsEngine()
    engine.apply(Store(location, holdings=False).engine_events({}, None), ordered=True)
    return engine


def _write_as_before(table: Any, engine: HoldingsEngine, columns: pa.Schema, properties: dict[str, str]) -> None:
    """The engine's rows in ``columns`` alone, as an earlier layout stored them, reflecting the forty events."""
    with table.transaction() as tx:
        tx.append(holdings_arrow(engine).select(columns.names))
        tx.set_properties({**properties, APPLIED: '{"events": {"0": 39}}'})


def test_a_table_of_the_old_layout_is_rebuilt_once_into_buckets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Layout 1 (unpartitioned): the first refresh says so and rebuilds it in buckets; later refreshes are partial."""
    location = StoreLocation.embedded(tmp_path)
    new_rows = _forty_stored_then_dropped(location)
    # the table as the previous version made it: no bucket column, unpartitioned, layout "1"
    old_columns = pa.schema([f for f in HOLDINGS_COLUMNS if f.name != "bucket"])
    table = location.catalog().create_table(location.identifier(HOLDINGS), schema=iceberg_schema(old_columns))
    _write_as_before(table, _engine_of(location), old_columns, {FORMAT: "1", SOURCE: "0"})
    with caplog.at_level(logging.WARNING, logger="lineage.ingest.holdings"):
        done = HoldingsMaintainer(location).refresh()
    assert done.snapshot is not None
    assert any("layout 1" in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records)
    table = load_holdings(location)
    assert [f.name for f in table.spec().fields] == ["bucket"]
    assert _rows(location) == new_rows
    _ingest(location, [_collect(60, "s3")], first=40)
    before = _files(location)
    HoldingsMaintainer(location).refresh()
    after = _files(location)
    assert set(after) - set(before) and {after[f] for f in set(after) - set(before)} == {bucket_of("s3")}
    report = access_request(Store(location), "s3", TAX, as_of=T0 + timedelta(hours=2))
    assert len(report.holdings) == 1 and report.holdings[0]["holder"] == "app"


def test_the_holdings_of_an_events_snapshot_are_the_refresh_s_last_snapshot_even_within_one_millisecond() -> None:
    """A refresh's delete and append snapshots name the same source at one time: the append (all rows) is chosen."""

    def snapshot(snapshot_id: int, sequence: int) -> SimpleNamespace:
        return SimpleNamespace(snapshot_id=snapshot_id, sequence_number=sequence, timestamp_ms=1_000,
                               summary={SOURCE: "42"}, schema_id=0)  # fmt: skip

    # in commit order, as the table's metadata lists them: the delete first, then the append
    table = SimpleNamespace(metadata=SimpleNamespace(snapshots=[snapshot(7, 1), snapshot(8, 2), snapshot(9, 3)]),
                            schemas=lambda: {0: SimpleNamespace(column_names=["subject", "bucket"])})  # fmt: skip
    assert holdings_snapshot_for(table, 42) == 9  # type: ignore[arg-type]  # a fake: the function reads these fields
    assert holdings_snapshot_for(table, 41) is None  # type: ignore[arg-type]


def test_a_pinned_events_snapshot_whose_stored_holdings_are_of_the_old_layout_is_answered_in_full(
    tmp_path: Path,
) -> None:
    """Pinning events whose only holdings are layout 1 (no buckets): computed in memory, none of the person's lost."""
    location = StoreLocation.embedded(tmp_path)
    _ingest(location, [_collect(i, f"s{i}") for i in range(40)], first=0)
    pinned = location.load().current_snapshot()
    assert pinned is not None
    catalog = location.catalog()
    old_columns = pa.schema([f for f in HOLDINGS_COLUMNS if f.name != "bucket"])
    table = catalog.create_table(location.identifier(HOLDINGS), schema=iceberg_schema(old_columns))
    engine = HoldingsEngine()
    engine.apply(Store(location, holdings=False).engine_events({}, None), ordered=True)
    with table.transaction() as tx:  # as the previous version stored them, made from the pinned events
        made_from = {SOURCE: str(pinned.snapshot_id)}
        tx.append(holdings_arrow(engine).select(old_columns.names), snapshot_properties=made_from)
        tx.set_properties({FORMAT: "1", SOURCE: str(pinned.snapshot_id), APPLIED: '{"events": {"0": 39}}'})
    _ingest(location, [_collect(60, "s3")], first=40)
    HoldingsMaintainer(location).refresh()  # brought to buckets, from the newer events
    assert holdings_snapshot_for(load_holdings(location), pinned.snapshot_id) is None  # its rows have no bucket
    report = access_request(Store(location, snapshot=pinned.snapshot_id), "s3", TAX, as_of=T0 + timedelta(hours=2))
    assert len(report.holdings) == 1 and report.holdings[0]["holder"] == "app"


def test_the_rows_of_an_engine_restore_the_same_flows_runs_and_links() -> None:
    """Flow rows made a column at a time, identity rows in chunks: restored, they are the engine's own state."""
    values, _, _ = _world(25)
    codec = Codec()
    events = [event_from_record(codec.decode_record(v)) for v in values]
    for i in range(20):  # people known by a second identifier: link rows
        linked = {**_collect(i, f"s{i}"), "linked_subject_ids": [f"alias{i}"]}
        events.append(event_from_record(codec.decode_record(codec.encode_record(linked))))  # type: ignore[arg-type]
    engine = HoldingsEngine()
    engine.apply(sorted(events, key=lambda e: e.sort_key()), ordered=True)
    flows = sorted(engine.flow_events())
    assert len({fe.flow for fe, _ in flows}) > 1 and len(list(engine.links())) == 20  # several bulk flows
    rows = pa.Table.from_batches(list(_batches(engine, None, size=7)), HOLDINGS_COLUMNS)  # identities in chunks of 7
    restored = engine_from_table(rows, engine.watermark)
    assert sorted(restored.flow_events()) == flows
    assert sorted(map(astuple, restored.runs())) == sorted(map(astuple, engine.runs()))
    assert sorted(restored.links()) == sorted(engine.links())
    assert sorted(restored.persons()) == sorted(engine.persons())


def _consent(minute: int, subject: str) -> dict[str, object]:
    return make_record("CONSENT", system="app", system_region="CN", occurred_at=T0 + timedelta(minutes=minute),
                       holder=PARTY["app"], subject_id=subject, categories=["user.contact.email"],
                       purpose="essential.service", consent_status="GRANTED", consent_kind="GENERAL")  # fmt: skip


def _erase(minute: int, subject: str) -> dict[str, object]:
    return make_record("ERASED", system="app", system_region="CN", occurred_at=T0 + timedelta(minutes=minute),
                       holder=PARTY["app"], subject_id=subject, categories=["user.contact.email"],
                       erasure_outcome="ERASED")  # fmt: skip


def test_a_subject_whose_run_ended_gets_a_reset_and_every_reader_sees_the_run_ended(tmp_path: Path) -> None:
    """An erasure makes the subject's runs again beside a reset: the view, the engine and the rows read it ended."""
    location = StoreLocation.embedded(tmp_path)
    maintainer = HoldingsMaintainer(location)
    _ingest(location, [_collect(i % 50, f"s{i}") for i in range(100)], first=0)
    maintainer.refresh()
    _ingest(location, [_erase(70, "s7")], first=100)
    maintainer.refresh()
    files = _files(location)
    assert list(files.values()).count(RESETS_BUCKET) == 1
    assert [r for r in _rows(location) if r[1] == "s7"][0][9] is not None  # ended_at: the stored run dropped
    as_of = T0 + timedelta(hours=2)
    report = access_request(Store(location), "s7", TAX, as_of=as_of)
    assert [h["erased_at"] is not None for h in report.holdings] == [True]
    table = load_holdings(location)
    restored = engine_from_table(table.scan().to_arrow(), None)
    erased_at = int((T0 + timedelta(minutes=70)).timestamp() * 1_000_000)
    assert [r.ended for r in restored.runs() if r.subject == "s7"] == [erased_at]
    kept = _rows(location)
    maintainer.refresh(rebuild=True)
    assert kept == _rows(location) and RESETS_BUCKET not in _files(location).values()


def test_a_bucket_that_gathered_max_files_is_folded_into_one_with_its_resets_dropped(tmp_path: Path) -> None:
    """Refreshes touching one bucket add a file each until it holds MAX_FILES; the next folds it into one."""
    location = StoreLocation.embedded(tmp_path)
    maintainer = HoldingsMaintainer(location)
    _ingest(location, [_collect(i % 50, f"s{i}") for i in range(100)], first=0)
    maintainer.refresh()
    home = bucket_of("s7")
    _ingest(location, [_erase(60, "s7")], first=100)  # a reset of s7, in the resets' file
    maintainer.refresh()
    for n in range(MAX_FILES - 2):
        _ingest(location, [_collect(61 + n, "s7")], first=101 + n)
        maintainer.refresh()
    assert list(_files(location).values()).count(home) == MAX_FILES
    _ingest(location, [_collect(90, "s7")], first=200)
    maintainer.refresh()
    files = _files(location)
    assert list(files.values()).count(home) == 1 and RESETS_BUCKET not in files.values()
    kept = _rows(location)
    assert sum(1 for r in kept if r[1] == "s7") == MAX_FILES
    maintainer.refresh(rebuild=True)
    assert kept == _rows(location)


def test_a_table_of_layout_2_is_read_as_it_is_and_brought_to_layout_3_without_a_rebuild(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Layout 2 (no gen column): answered as stored; the next refresh adds the column from the rows it keeps."""
    location = StoreLocation.embedded(tmp_path)
    new_rows = _forty_stored_then_dropped(location)
    old_columns = pa.schema([f for f in HOLDINGS_COLUMNS if f.name != "gen"])
    with load_holdings(location, create=True).update_schema() as schema:
        schema.delete_column("gen")
    events = location.load().current_snapshot()
    assert events is not None
    properties = {FORMAT: "2", SOURCE: str(events.snapshot_id)}
    _write_as_before(load_holdings(location), _engine_of(location), old_columns, properties)
    assert _rows(location) == new_rows
    before = access_request(Store(location), "s3", TAX, as_of=T0 + timedelta(hours=2))
    assert len(before.holdings) == 1
    # a consent changes no holding: the refresh converts the table all the same, every file with ``gen``
    _ingest(location, [_consent(50, "s3")], first=40)
    with caplog.at_level(logging.WARNING, logger="lineage.ingest.holdings"):
        HoldingsMaintainer(location).refresh()
    assert not any("rebuilding" in r.getMessage() for r in caplog.records)
    table = load_holdings(location)
    assert "gen" in table.schema().column_names and table.properties[FORMAT] == "3"
    paths = [path.removeprefix("file://") for path in _files(location)]
    assert all("gen" in pq.read_schema(path).names for path in paths)
    assert _rows(location) == new_rows
    _ingest(location, [_erase(60, "s3")], first=41)
    HoldingsMaintainer(location).refresh()
    after = access_request(Store(location), "s3", TAX, as_of=T0 + timedelta(hours=2))
    assert [h["erased_at"] is not None for h in after.holdings] == [True]


def test_a_refresh_that_would_keep_more_than_max_resets_folds_their_buckets_instead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_RESETS (here 1), the buckets of every subject rewritten are folded and no reset is kept."""
    monkeypatch.setattr("lineage.store.holdings.MAX_RESETS", 1)
    location = StoreLocation.embedded(tmp_path)
    maintainer = HoldingsMaintainer(location)
    _ingest(location, [_collect(i % 50, f"s{i}") for i in range(100)], first=0)
    maintainer.refresh()
    _ingest(location, [_erase(60, "s7")], first=100)
    maintainer.refresh()
    assert RESETS_BUCKET in _files(location).values()  # one: kept
    before = _files(location)
    _ingest(location, [_erase(61, "s8")], first=101)
    maintainer.refresh()
    after = _files(location)
    assert RESETS_BUCKET not in after.values()
    for subject in ("s7", "s8"):
        assert list(after.values()).count(bucket_of(subject)) == 1
        assert not any(b == bucket_of(subject) for f, b in before.items() if f in after)
    kept = _rows(location)
    maintainer.refresh(rebuild=True)
    assert kept == _rows(location)


def test_a_reset_drops_the_earlier_runs_of_its_subject_alone_not_its_person_key_or_links() -> None:
    """current_rows: a run of gen 1 under a reset of gen 2 goes; the run of gen 2 and a person row stay."""

    def row(kind: str, subject: str, gen: int | None, bucket: int) -> dict[str, Any]:
        return {"kind": kind, "subject": subject, "gen": gen, "bucket": bucket}

    rows = pa.Table.from_pylist(
        [
            row("run", "s1", 1, 0),
            row("run", "s1", 2, 0),
            row("run", "s2", None, 0),
            row("person", "s1", 0, -2),
            row("reset", "s1", 2, RESETS_BUCKET),
        ],  # fmt: skip
        schema=HOLDINGS_COLUMNS,
    )
    kept = current_rows(rows)
    assert [(r["kind"], r["subject"], r["gen"]) for r in kept.to_pylist()] == [
        ("run", "s1", 2), ("run", "s2", None), ("person", "s1", 0)
    ]  # fmt: skip


def test_a_refresh_changing_flows_and_identities_together_writes_each_bucket_apart(tmp_path: Path) -> None:
    """A bulk flow and a linked identifier in one refresh: a file for each of the two buckets, the rows a rebuild's."""
    values, _, _ = _world(5)
    codec = Codec()
    bulk = [i for i, v in enumerate(values) if codec.decode_record(v).get("scope") == "BULK"]
    cut = bulk[len(bulk) // 2]
    location = StoreLocation.embedded(tmp_path)
    ingestor = Ingestor(location, "events", taxonomy=TAX)
    for offset, value in enumerate(values[:cut]):
        assert ingestor.add(0, offset, value) is None
    ingestor.flush()
    maintainer = HoldingsMaintainer(location)
    maintainer.refresh()
    before = _files(location)
    ingestor = Ingestor(location, "events", taxonomy=TAX)
    assert ingestor.add(0, cut, values[cut]) is None  # the bulk flow
    linked = {**_collect(500_000, "zz-new"), "linked_subject_ids": ["zz-alias"]}
    assert ingestor.add_record(0, cut + 1, linked) is None  # type: ignore[arg-type]
    ingestor.flush()
    maintainer.refresh()
    added = {bucket for path, bucket in _files(location).items() if path not in before}
    assert {FLOWS_BUCKET, IDENTITY_BUCKET} <= added
    rows = _rows(location)
    maintainer.refresh(rebuild=True)
    assert _rows(location) == rows
