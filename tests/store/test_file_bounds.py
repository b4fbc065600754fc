"""A person's lookup reads only the data files whose footers admit the person, and answers the same."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyiceberg.schema import Schema
from pyiceberg.types import NestedField, StringType

from lineage import default_taxonomy
from lineage.answers import access_request, erasure_plan
from lineage.codec import Codec
from lineage.contract.records import Record, make_record
from lineage.errors import LineageError, StoreCorruptError
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.store import Session, Store, StoreLocation
from lineage.store import engine as store_engine
from lineage.store.file_bounds import (
    SourceOffsets,
    bounds_of,
    entry_bounds,
    files_admitting,
    files_after,
    files_with_nulls,
    manifest_bounds,
)
from lineage.store.tables import COLUMNS
from tests.answers.test_shared_store import _shared_settings
from tests.fixtures import PARTY, at_minute, examples, histories
from tests.services import Postgres, SeaweedS3

TAX = default_taxonomy()
IDENTIFIERS = ["s1", "s2", "s3", "dev-1", "mail-1", "nobody"]


def _parquet(path: Path, subjects: list[str | None], *, statistics: bool = True, group: int = 2) -> pq.FileMetaData:
    pq.write_table(pa.table({"subject_id": pa.array(subjects, pa.string())}), path, row_group_size=group,
                   write_statistics=statistics)  # fmt: skip
    return pq.read_metadata(path)


def test_a_file_is_left_out_only_when_its_footer_proves_it_holds_none_of_the_values(tmp_path: Path) -> None:
    """Ranges over row groups admit values inside them; no statistics or an absent column decide nothing wrongly."""
    ranged = bounds_of("a", _parquet(tmp_path / "a", ["b", "c", None, "f"]), ["subject_id"])
    unknown = bounds_of("b", _parquet(tmp_path / "b", ["x"], statistics=False), ["subject_id"])
    nulls = bounds_of("c", _parquet(tmp_path / "c", [None, None, None]), ["subject_id"])
    absent = bounds_of("d", _parquet(tmp_path / "d", ["z"]), ["subject_id", "other"])
    files = [ranged, unknown, nulls, absent]
    assert files_admitting(files, subject_id=["b"]) == ["a", "b"]
    assert files_admitting(files, subject_id=["d"]) == ["a", "b"]  # inside the range, though not held
    assert files_admitting(files, subject_id=["a", "g"]) == ["b"]
    assert files_admitting(files, subject_id=["g", "z"]) == ["b", "d"]
    assert files_admitting([absent], other=["b"]) == []  # a column the file lacks reads as null
    assert files_with_nulls(files, "subject_id") == ["a", "b", "c"]


def _store_in_parts(records: list[Record], folder: Path | StoreLocation, parts: int = 4) -> Store:
    """``records`` sorted by subject and stored in ``parts`` commits: files of distinct subject ranges."""
    location = folder if isinstance(folder, StoreLocation) else StoreLocation.embedded(folder)
    ordered = sorted(records, key=lambda r: (r.get("subject_id") is None, r.get("subject_id") or ""))
    ing, codec = Ingestor(location, "events", taxonomy=TAX), Codec()
    size = -(-len(ordered) // parts)
    for offset, record in enumerate(ordered):
        assert ing.add(0, offset, codec.encode_record(record), None, ()) is None
        if (offset + 1) % size == 0:
            ing.flush()
    ing.flush()
    HoldingsMaintainer(location).refresh()
    return Store(location)


def _answers(store: Store) -> list[object]:
    at = at_minute(40)
    return [(access_request(store, i, TAX, at), erasure_plan(store, i, TAX, at)) for i in IDENTIFIERS]


def _unnarrowed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("event_files_of", "bulk_event_files", "holdings_files_of", "identity_files_of"):
        monkeypatch.setattr(Session, name, lambda self, *args: None)


@settings(max_examples=examples(25), deadline=None)
@given(histories())
def test_lookups_over_the_files_a_person_s_footers_admit_equal_lookups_over_every_file(records: list[Record]) -> None:
    """Random histories in several files (a folder name with a space and ``=``): the same answers."""
    with tempfile.TemporaryDirectory() as tmp:
        store = _store_in_parts(records, Path(tmp) / "st 1=x")
        narrowed = _answers(store)
        with pytest.MonkeyPatch.context() as monkeypatch:
            _unnarrowed(monkeypatch)
            assert _answers(Store(store.location)) == narrowed


@pytest.mark.parametrize(("name", "narrows"), [
    ("back\\slash", False),  # read through pyarrow: no file names to match
    ("st[1] {a,b}*", False),  # expanded as a glob by DuckDB
    ("a/../st[1]", False),  # expanded, and reported normalised (st[1]): would match no path given
    ("a/../plain", True),  # given and reported as it is
])  # fmt: skip
def test_a_store_whose_file_names_duckdb_would_not_report_as_given_is_read_whole(
    tmp_path: Path, name: str, narrows: bool
) -> None:
    """Paths with a backslash or glob characters are not narrowed (a list of them matched no row): answers whole."""
    (tmp_path / "a").mkdir()
    records = [
        make_record("COLLECTED", system="app", system_region="CN", occurred_at=at_minute(1), holder=PARTY["app"],
                    subject_id="s1", linked_subject_ids=["dev-1"], categories=["user.contact.email"],
                    purpose="essential.service", legal_basis="CONTRACT")
    ]  # fmt: skip
    store = _store_in_parts(records, tmp_path / name, parts=1)
    with store.session() as q:
        assert (q.event_files_of(["s1"]) is not None) is narrows
        assert (q.holdings_files_of(["s1"]) is not None) is narrows
    report = access_request(store, "dev-1", TAX, at_minute(40))
    assert report.identifiers == ["dev-1", "s1"]
    assert [h["holder"] for h in report.holdings] == ["app"]
    assert [h["holder"] for h in erasure_plan(store, "s1", TAX, at_minute(40)).holders] == ["app"]


def test_a_person_s_lookup_reads_fewer_files_than_the_store_holds(tmp_path: Path) -> None:
    """Events sorted by subject in four files: one subject's lookup names one of them, and the answer is whole."""
    records = [
        make_record("COLLECTED", system="app", system_region="CN", occurred_at=at_minute(i), holder=PARTY["app"],
                    subject_id=f"p{i:02d}", categories=["user.contact.email"], purpose="essential.service",
                    legal_basis="CONTRACT")
        for i in range(40)
    ]  # fmt: skip
    store = _store_in_parts(records, tmp_path)
    with store.session() as q:
        assert len(q.event_files_of(["p05"]) or []) == 1
        assert len(q._files) > 4  # noqa: SLF001 - every event and holdings file of the snapshot
        assert q.bulk_event_files() == []
    assert [h["category"] for h in access_request(store, "p05", TAX).holdings] == ["user.contact.email"]


def test_a_local_store_s_manifests_give_the_bounds_its_footers_give(tmp_path: Path) -> None:
    """Events in four files and stored holdings: each file's bounds read from the manifests equal its footer's."""
    store = _store_in_parts(_people("p"), tmp_path)
    pinned = store._pin()  # noqa: SLF001 - what the reader pinned
    assert pinned.mixed_layouts is False and pinned.event_bounds is not None and pinned.holdings_bounds is not None
    footers = [bounds_of(f, pq.read_metadata(f), ["subject_id"]) for f in pinned.event_files]
    footers += [bounds_of(f, pq.read_metadata(f), ["subject", "bucket"]) for f in pinned.holdings_files]
    assert pinned.event_bounds + pinned.holdings_bounds == footers


def test_a_local_lookup_checks_the_footers_of_the_files_it_reads_and_a_full_read_checks_every_one(
    tmp_path: Path,
) -> None:
    """A spoilt file a person's lookup leaves out: the answer is whole; a read of every file names it."""
    store = _store_in_parts(_people("p"), tmp_path)
    at = at_minute(40)
    wanted = access_request(store, "p05", TAX, at)
    with store.session() as q:
        mine = q.event_files_of(["p05"]) or []
        files = q._files  # noqa: SLF001 - every event and holdings file of the snapshot
    # not the first: DuckDB reads the first file of a view to learn its columns
    spoilt = Path([f for f in files if "/events/" in f and f not in mine][-1])
    spoilt.write_bytes(b"not parquet")
    assert access_request(Store(store.location), "p05", TAX, at) == wanted
    with pytest.raises(StoreCorruptError, match=spoilt.name):
        with Store(store.location).session() as q:
            q.rows("holders")
    read = Path(mine[0])
    read.write_bytes(b"not parquet")
    with pytest.raises(StoreCorruptError, match=read.name):
        access_request(Store(store.location), "p05", TAX, at)


def _people(prefix: str, count: int = 40) -> list[Record]:
    """Each person collected by app, linked to a device id, shared with pay; some bulk exports between."""
    out = []
    for i in range(count):
        subject = f"{prefix}{i:02d}"
        out.append(make_record("COLLECTED", system="app", system_region="CN", occurred_at=at_minute(i % 30),
                               holder=PARTY["app"], subject_id=subject, linked_subject_ids=[f"dev-{subject}"],
                               categories=["user.contact.email"], purpose="essential.service",
                               legal_basis="CONTRACT"))  # fmt: skip
    return out


@pytest.mark.parametrize("prefix", ["p", "a-subject-id-longer-than-sixteen-"])
def test_on_s3_a_lookup_opens_only_the_files_the_manifests_admit(
    postgres: Postgres, s3: SeaweedS3, prefix: str
) -> None:
    """PostgreSQL + S3: the manifests' bounds narrow a lookup (truncated long ids too), and answers stay whole."""
    location = StoreLocation.from_settings(_shared_settings(postgres, s3))
    store = _store_in_parts(_people(prefix), location)
    asked = [f"{prefix}05", f"dev-{prefix}05", f"{prefix}33", "nobody"]
    at = at_minute(40)
    narrowed = [(access_request(store, i, TAX, at), erasure_plan(store, i, TAX, at)) for i in asked]
    assert [h["holder"] for h in narrowed[1][0].holdings] == ["app"]
    with store.session() as q:
        files = q._files  # noqa: SLF001 - every event and holdings file of the snapshot
        mine, events = q.event_files_of([f"{prefix}05"]), q.event_files_of([])
        assert mine is not None and q.holdings_files_of([f"{prefix}05"]) is not None
    with pytest.MonkeyPatch.context() as monkeypatch:
        _unnarrowed(monkeypatch)
        assert [(access_request(Store(location), i, TAX, at), erasure_plan(Store(location), i, TAX, at))
                for i in asked] == narrowed  # fmt: skip
    if len(prefix) > 16:
        return  # bounds truncated to a shared prefix admit every file: nothing left out, nothing lost
    assert len(mine) == 1 and events == []
    # a file the lookup leaves out is never opened: spoilt, the answer is the same; a full read fails
    spoilt = next(f for f in files if "/data/" in f and f not in mine and "bucket=" not in f)
    with location.filesystem().open_output_stream(spoilt) as out:
        out.write(b"not parquet")
    again = Store(location)
    assert (access_request(again, f"{prefix}05", TAX, at), erasure_plan(again, f"{prefix}05", TAX, at)) == narrowed[0]
    with pytest.raises(LineageError):
        again.sql("SELECT count(*) AS n FROM events WHERE purpose IS NOT NULL")


def test_a_manifest_bound_that_does_not_decode_reads_as_may_hold_anything() -> None:
    """A string bound cut inside a UTF-8 character (another writer's) admits every value instead of failing."""
    schema = Schema(NestedField(1, "subject_id", StringType(), required=False))
    cut = SimpleNamespace(lower_bounds={1: b"p\xc3"}, upper_bounds={1: b"q"}, null_value_counts={1: 0},
                          value_counts={1: 3})  # fmt: skip
    sound = SimpleNamespace(lower_bounds={1: b"a"}, upper_bounds={1: b"c"}, null_value_counts={1: 0},
                            value_counts={1: 3})  # fmt: skip
    files = [manifest_bounds(n, f, schema, ["subject_id"]) for n, f in (("cut", cut), ("sound", sound))]  # type: ignore[arg-type]
    assert files_admitting(files, subject_id=["z"]) == ["cut"]
    assert files_admitting(files, subject_id=["b"]) == ["cut", "sound"]
    assert files_with_nulls(files, "subject_id") == ["cut"]


def test_a_manifest_entry_read_with_fastavro_decodes_strings_and_integers_and_nothing_else() -> None:
    """Bounds as an Avro reader gives them: strings and ints decode; a cut string or a wrong width admits anything."""
    fields = {"subject_id": (1, "string"), "bucket": (2, "int"), "seen": (3, "timestamptz")}

    def entry(lower: dict[int, bytes], upper: dict[int, bytes]) -> dict[str, object]:
        return {"lower_bounds": [{"key": k, "value": v} for k, v in lower.items()],
                "upper_bounds": [{"key": k, "value": v} for k, v in upper.items()],
                "null_value_counts": [{"key": 1, "value": 0}, {"key": 2, "value": 0}, {"key": 3, "value": 1}],
                "value_counts": [{"key": k, "value": 3} for k in (1, 2, 3)]}  # fmt: skip

    sound = entry({1: b"a", 2: (-1).to_bytes(4, "little", signed=True), 3: bytes(8)},
                  {1: b"c", 2: (7).to_bytes(4, "little", signed=True), 3: bytes(8)})  # fmt: skip
    bounds = entry_bounds("sound", sound, fields, ["subject_id", "bucket", "seen"])
    assert bounds.ranges == {"subject_id": ("a", "c"), "bucket": (-1, 7), "seen": None}
    assert bounds.nullable == frozenset({"seen"})
    odd = entry({1: b"p\xc3", 2: b"\x01"}, {1: b"q", 2: b"\x02"})
    assert entry_bounds("odd", odd, fields, ["subject_id", "bucket"]).ranges == {"subject_id": None, "bucket": None}


def test_on_s3_a_spoilt_holdings_file_is_named_in_one_line(postgres: Postgres, s3: SeaweedS3) -> None:
    """A holdings file that does not decode on S3 fails an answer as StoreCorruptError naming it, not DuckDB's text."""
    location = StoreLocation.from_settings(_shared_settings(postgres, s3))
    store = _store_in_parts(_people("p"), location, parts=1)
    with store.session() as q:
        spoilt = next(f for f in q._files if "bucket=" in f)  # noqa: SLF001 - the snapshot's files
    with location.filesystem().open_output_stream(spoilt) as out:
        out.write(b"not parquet")
    with pytest.raises(StoreCorruptError) as caught:
        access_request(Store(location), "p05", TAX, at_minute(40))
    assert spoilt.rsplit("/", 1)[1] in str(caught.value) and "Invalid" not in str(caught.value)


def test_an_event_file_is_read_by_a_refresh_only_when_it_holds_an_event_after_its_partition_s_applied_offset() -> None:
    """Per partition, not over the file: skewed offsets and a partition never written leave old files out."""
    applied = {"t": {0: 99, 1: 5, 3: 10}}
    offsets = {
        "old": {("t", 0): 99, ("t", 1): 5},  # every event applied, though one partition is far behind
        "gap": {("t", 0): 50, ("t", 3): 10},  # partitions 0 and 3 only
        "edge": {("t", 0): 50, ("t", 1): 6},  # offset 6 of partition 1 is new
        "unapplied": {("t", 2): 0},  # a partition never applied
        "other": {("u", 0): 0},  # an origin never applied
        "nulls": None,  # a row naming no partition
        "empty": {},  # no event at all
    }
    assert files_after(offsets, applied) == ["edge", "unapplied", "other", "nulls"]
    assert files_after(offsets, {}) == ["old", "gap", "edge", "unapplied", "other", "nulls"]


def _sources(folder: Path, values: list[tuple[int, Record]], commits: int) -> StoreLocation:
    """``values`` (partition, record) stored in ``commits`` commits, offsets counted per partition."""
    location = StoreLocation.embedded(folder)
    ing, codec, next_offset = Ingestor(location, "events", taxonomy=TAX), Codec(), [0, 0, 0]
    size = -(-len(values) // commits)
    for i, (partition, record) in enumerate(values):
        assert ing.add(partition, next_offset[partition], codec.encode_record(record), None, ()) is None
        next_offset[partition] += 1
        if (i + 1) % size == 0:
            ing.flush()
    ing.flush()
    return location


@settings(max_examples=examples(25), deadline=None)
@given(histories(), st.lists(st.integers(0, 1), min_size=14, max_size=14), st.integers(1, 5),
       st.integers(-1, 8), st.integers(-1, 8))  # fmt: skip
def test_the_new_events_read_from_the_files_after_the_applied_offsets_equal_those_read_from_every_file(
    records: list[Record], partitions: list[int], commits: int, first: int, second: int
) -> None:
    """Random histories on two partitions in several files: the same new events, and the same holdback bounds."""
    with tempfile.TemporaryDirectory() as tmp:
        location = _sources(Path(tmp), list(zip(partitions, records, strict=False)), commits)
        applied = {"events": {0: first, 1: second}}

        def read() -> tuple[list[str], object]:
            store = Store(location, holdings=False)
            events = [e.event_id for e in store.engine_events(applied, None, floor=None)]
            return events, store.holdback(applied, floor=None)

        narrowed = read()
        with pytest.MonkeyPatch.context() as monkeypatch:
            monkeypatch.setattr(store_engine, "files_after", lambda offsets, applied: list(offsets))
            assert read() == narrowed


@pytest.mark.parametrize("where", ["embedded", "s3"])
def test_a_refresh_reads_only_the_event_files_stored_after_the_offsets_it_applied(
    tmp_path: Path, request: pytest.FixtureRequest, where: str
) -> None:
    """Four commits applied, a fifth stored: the refresh's reads name that one file alone; its holdings are whole."""
    if where == "s3":
        location = StoreLocation.from_settings(
            _shared_settings(request.getfixturevalue("postgres"), request.getfixturevalue("s3"))
        )
    else:
        location = StoreLocation.embedded(tmp_path)
    _store_in_parts(_people("p"), location)  # four commits, then a refresh
    read: list[int] = []
    with pytest.MonkeyPatch.context() as monkeypatch:

        def spy(offsets: dict[str, SourceOffsets], applied: dict[str, dict[int, int]]) -> list[str]:
            after = files_after(offsets, applied)
            read.append(len(after))
            return after

        monkeypatch.setattr(store_engine, "files_after", spy)
        ing, codec = Ingestor(location, "events", taxonomy=TAX), Codec()
        later = [make_record("COLLECTED", system="app", system_region="CN", occurred_at=at_minute(35 + i),
                             holder=PARTY["app"], subject_id=f"q{i:02d}", categories=["user.contact.email"],
                             purpose="essential.service", legal_basis="CONTRACT") for i in range(3)]  # fmt: skip
        for offset, record in enumerate(later, 40):
            assert ing.add(0, offset, codec.encode_record(record), None, ()) is None
        ing.flush()
        maintainer = HoldingsMaintainer(location)
        maintainer.holdback = True
        assert maintainer.refresh().events == 3
    assert read and set(read) == {1}
    assert [h["holder"] for h in access_request(Store(location), "q01", TAX, at_minute(40)).holdings] == ["app"]


def test_a_refresh_leaves_out_old_files_whose_partitions_run_at_different_offsets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Partition 0 at nine events to partition 2's one, partition 1 never written: a new maintainer reads one file."""
    people = sorted(_people("p"), key=lambda r: r["occurred_at"])
    location = _sources(tmp_path, [(2 if i % 10 == 0 else 0, r) for i, r in enumerate(people)], commits=4)
    HoldingsMaintainer(location).refresh()
    ing, codec = Ingestor(location, "events", taxonomy=TAX), Codec()
    later = make_record("COLLECTED", system="app", system_region="CN", occurred_at=at_minute(35), holder=PARTY["app"],
                        subject_id="q", categories=["user.contact.email"], purpose="essential.service",
                        legal_basis="CONTRACT")  # fmt: skip
    assert ing.add(0, 36, codec.encode_record(later), None, ()) is None
    ing.flush()
    read: list[int] = []

    def spy(offsets: dict[str, SourceOffsets], applied: dict[str, dict[int, int]]) -> list[str]:
        after = files_after(offsets, applied)
        read.append(len(after))
        return after

    monkeypatch.setattr(store_engine, "files_after", spy)
    maintainer = HoldingsMaintainer(location)  # a new process: every file's offsets read once
    maintainer.holdback = True
    assert maintainer.refresh().events == 1
    assert read == [1, 1]  # the holdback bounds, then the new events
    assert [h["holder"] for h in access_request(Store(location), "q", TAX, at_minute(40)).holdings] == ["app"]


def test_an_event_file_with_a_row_of_no_offset_is_always_read(tmp_path: Path) -> None:
    """Another writer's row naming its partition but no offset: its file is read, and refreshes go on."""
    location = _sources(tmp_path, [(0, r) for r in sorted(_people("p"), key=lambda r: r["occurred_at"])], commits=2)
    maintainer = HoldingsMaintainer(location)
    maintainer.refresh()
    row = {c.name: None for c in COLUMNS}
    row.update(event_id="ext-1", event_type="COLLECTED", occurred_at=at_minute(50), scope="SUBJECT", subject_id="ext",
               categories=["user.contact.email"], holder_name="app", holder_role="internal", holder_region="CN",
               purpose="essential.service", legal_basis="CONTRACT", linked_subject_ids=[], origin="events",
               kafka_partition=7)  # fmt: skip
    location.load().append(pa.Table.from_pylist([row], schema=COLUMNS))
    ing, codec = Ingestor(location, "events", taxonomy=TAX), Codec()
    for offset, subject in ((40, "q1"), (41, "q2")):
        later = make_record("COLLECTED", system="app", system_region="CN", occurred_at=at_minute(offset + 15),
                            holder=PARTY["app"], subject_id=subject, categories=["user.contact.email"],
                            purpose="essential.service", legal_basis="CONTRACT")  # fmt: skip
        assert ing.add(0, offset, codec.encode_record(later), None, ()) is None
        ing.flush()
        # the same maintainer, then a new one (its first look reads every file's offsets)
        done = (maintainer if subject == "q1" else HoldingsMaintainer(location)).refresh()
        # the row of no offset is read as new (partition 7 is never recorded as applied), with the event
        assert done.events >= 2
    store = Store(location)
    for subject in ("q1", "q2"):
        assert [h["holder"] for h in access_request(store, subject, TAX, at_minute(59)).holdings] == ["app"]


def test_an_event_row_whose_lists_another_writer_left_null_is_applied_as_empty_lists(tmp_path: Path) -> None:
    """Another writer's collection with NULL links and a transfer with NULL categories: a refresh goes on."""
    location = _sources(tmp_path, [(0, r) for r in sorted(_people("p"), key=lambda r: r["occurred_at"])], commits=2)
    maintainer = HoldingsMaintainer(location)
    maintainer.refresh()
    base = {c.name: None for c in COLUMNS}
    base.update(scope="SUBJECT", subject_id="ext", holder_name="app", holder_role="internal", holder_region="CN",
                purpose="essential.service", legal_basis="CONTRACT", origin="events", kafka_partition=0)  # fmt: skip
    collected = {**base, "event_id": "ext-1", "event_type": "COLLECTED", "occurred_at": at_minute(50),
                 "categories": ["user.contact.email"], "kafka_offset": 100}  # fmt: skip
    shared = {**base, "event_id": "ext-2", "event_type": "SHARED", "occurred_at": at_minute(51), "kafka_offset": 101,
              "recipient_name": "sms-gateway", "recipient_role": "processor", "recipient_region": "CN"}  # fmt: skip
    location.load().append(pa.Table.from_pylist([collected, shared], schema=COLUMNS))
    ing = Ingestor(location, "events", taxonomy=TAX)
    later = make_record("COLLECTED", system="app", system_region="CN", occurred_at=at_minute(52), holder=PARTY["app"],
                        subject_id="q", categories=["user.contact.email"], purpose="essential.service",
                        legal_basis="CONTRACT")  # fmt: skip
    assert ing.add(0, 102, Codec().encode_record(later), None, ()) is None
    ing.flush()  # a refresh follows the consumers' commits
    assert maintainer.refresh().events == 3
    held = access_request(Store(location), "ext", TAX, at_minute(59)).holdings
    assert [h["holder"] for h in held] == ["app"]  # a share of no category moves nothing
    assert HoldingsMaintainer(location).refresh(rebuild=True).events >= 2
    assert [h["holder"] for h in access_request(Store(location), "ext", TAX, at_minute(59)).holdings] == ["app"]
