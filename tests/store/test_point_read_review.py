"""Point reads of files other writers made equal DuckDB's answers; the holdings' lazy writes leave nothing behind."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lineage.store.holdings as holdings_module
from lineage import Party
from lineage.answers._common import linked_identifiers
from lineage.contract.records import make_record
from lineage.store import Store
from lineage.store.catalog import StoreLocation
from lineage.store.holdings import load_holdings
from tests.fixtures import store_of

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _collected(subject: str, links: list[str], at: datetime) -> object:
    return make_record(
        "COLLECTED", system="app", system_region="CN", subject_id=subject, linked_subject_ids=links,
        categories=["user.device.device_id"], purpose="essential.service", legal_basis="CONTRACT", occurred_at=at,
    )  # fmt: skip


def _identity_file(folder: Path) -> Path:
    table = load_holdings(StoreLocation.embedded(folder))
    (path,) = [t.file.file_path for t in table.scan().plan_files() if "/bucket=-2/" in t.file.file_path]
    return Path(path.removeprefix("file://"))


def _by_duckdb(store: Store, identifier: str) -> tuple[str | None, list[dict[str, object]]]:
    with store.session() as q:
        found = q.lookup("person_of", {"id": identifier, "files": q.identity_files_of([identifier])})
        key = str(found[0]["person"]) if found else None
        links = q.lookup("person_links", {"person": key, "files": q.identity_files_of([key])}) if key else []
        return key, links


def _store_with_flow(folder: Path, people: int = 4, base: datetime = T0) -> Store:
    """Linked people and one bulk flow: the flows file comes first, so DuckDB's view takes its VARCHAR columns."""
    records = [_collected(f"user-{i}", [f"dev-{i}"], base + timedelta(hours=i)) for i in range(people)]
    records.append(make_record(
        "TRANSFERRED", system="app", system_region="CN", bulk_as_of=base + timedelta(days=1),
        occurred_at=base + timedelta(days=1), categories=["user.device.device_id"], purpose="essential.service",
        recipient=Party(name="sg-warehouse", role="affiliate", region="SG"), transfer_kind="CROSS_BORDER",
        mechanism="pipl.standard_contract",
    ))  # fmt: skip
    return store_of(records, folder)


# --- 1. nanosecond times: DuckDB rounds to the microsecond, the point read floors ---------------------


@pytest.mark.parametrize("int96", [False, True])
@pytest.mark.parametrize("base", [T0, datetime(1960, 3, 1, tzinfo=UTC)])
def test_nanosecond_link_times_equal_duckdbs(tmp_path: Path, base: datetime, int96: bool) -> None:
    """An ``arrived_at`` of sub-microsecond digits (+999 ns), as TIMESTAMP(NANOS) or INT96: DuckDB's instants."""
    # DuckDB's view is TIMESTAMPTZ (a flows file first) and casts a TIMESTAMP(NANOS) to microseconds by
    # rounding, halves away from zero (1,999 ns -> 2 us; -1 ns -> 0), but reads INT96 floored; ``_value``
    # rounds NANOS the same way, and pyarrow hands it INT96 floored to microseconds. Off by 1 us,
    # ``declared_at <= links_as_of`` would differ from the query path at the boundary. (With the identity
    # file first the view is TIMESTAMPTZ_NS and DuckDB's own Python conversion truncates toward zero: the
    # query path disagrees with itself there, so only this store's usual file order is asserted.)
    folder = tmp_path / "store"
    _store_with_flow(folder, people=3, base=base)
    identity = _identity_file(folder)
    rows = pq.read_table(identity)
    i = rows.schema.get_field_index("arrived_at")
    ns = pa.timestamp("ns", tz="UTC")
    micros = rows.column(i).cast(pa.int64()).to_pylist()
    nanos = pa.array([None if v is None else v * 1000 + 999 for v in micros], ns)
    rows = rows.set_column(i, rows.schema.field(i).with_type(ns), nanos)
    pq.write_table(rows, identity, use_deprecated_int96_timestamps=int96, store_schema=not int96)
    assert (pq.read_metadata(identity).schema.column(i).physical_type == "INT96") == int96
    store = Store(folder)
    key, links = _by_duckdb(store, "user-1")
    assert key is not None and links
    with store.session() as q:
        assert sorted(q.person_links(key), key=repr) == sorted(links, key=repr)
        as_of = links[0]["declared_at"] - timedelta(microseconds=1)  # DuckDB's instant, less 1 us
        by_points = linked_identifiers(q, "user-1", as_of)  # type: ignore[arg-type]
        q._points = None
        assert by_points == linked_identifiers(q, "user-1", as_of) == ["user-1"]  # type: ignore[arg-type]


# --- 2. a dictionary-typed column of text stored as bytes --------------------------------------------


@pytest.mark.parametrize("kind", ["dictionary", "binary_view"])
def test_text_as_bytes_read_as_dictionary_or_view_is_found_as_duckdb_finds_it(tmp_path: Path, kind: str) -> None:
    """Text stored as plain BINARY whose ARROW:schema says dictionary<binary> or binary_view (pyarrow, polars)."""
    # pyarrow reads the column as that type; left as ``bytes`` the values would never equal the ``str`` key,
    # and the person would silently not be found where DuckDB's query finds them.
    folder = tmp_path / "store"
    _store_with_flow(folder)
    identity = _identity_file(folder)
    rows = pq.read_table(identity)
    for name in ("kind", "subject", "via", "other"):
        i = rows.schema.get_field_index(name)
        column = rows.column(i).cast(pa.binary())
        column = column.dictionary_encode() if kind == "dictionary" else column.cast(pa.binary_view())
        rows = rows.set_column(i, rows.schema.field(i).with_type(column.type), column)
    pq.write_table(rows, identity)
    store = Store(folder)
    assert _by_duckdb(store, "user-1")[0] == "dev-1"  # DuckDB's query finds the person
    with store.session() as q:
        assert q.person_of("user-1") == "dev-1"
        assert linked_identifiers(q, "user-1") == ["dev-1", "user-1"]


# --- 3. answers against DuckDB's on random linked people ---------------------------------------------


def test_random_linked_people_resolve_as_duckdb_resolves_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Random link graphs (chains and merges across events), tiny row groups: linked_identifiers equal both ways."""
    monkeypatch.setattr(holdings_module, "IDENTITY_ROW_GROUP", 3)
    rng = random.Random(7)
    ids = [f"{p}-{i:02d}" for p in ("u", "d", "m", "x") for i in range(12)]
    records = []
    for n in range(40):
        subject = rng.choice(ids)
        links = rng.sample([i for i in ids if i != subject], rng.choice([0, 1, 1, 2, 3]))
        records.append(_collected(subject, links, T0 + timedelta(minutes=n)))
    store = store_of(records, tmp_path / "store")
    cut = T0 + timedelta(minutes=20)
    with store.session() as q:
        points = q._points
        assert points is not None
        got = {i: (linked_identifiers(q, i), linked_identifiers(q, i, cut)) for i in [*ids, "nobody"]}
        q._points = None  # DuckDB's queries
        want = {i: (linked_identifiers(q, i), linked_identifiers(q, i, cut)) for i in [*ids, "nobody"]}
    assert got == want


# --- 4. the lazy writes of _replace_files ------------------------------------------------------------


def _many_buckets(folder: Path, people: int = 40) -> StoreLocation:
    store_of([_collected(f"user-{i:03d}", [f"dev-{i:03d}"], T0 + timedelta(minutes=i)) for i in range(people)], folder)
    return StoreLocation.embedded(folder)


def _data_files(folder: Path) -> set[Path]:
    return set(folder.glob("warehouse/**/holdings/data/**/*.parquet"))


def _current(location: StoreLocation) -> list[str]:
    return [t.file.file_path for t in load_holdings(location).scan().plan_files()]


def test_a_task_generator_failing_midway_leaves_no_written_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``_write_tasks`` raising after some tasks were taken (a later part's schema refused): the files of those go."""
    import time

    from lineage.ingest.holdings import HoldingsMaintainer

    folder = tmp_path / "store"
    location = _many_buckets(folder)
    before, current = _data_files(folder), _current(location)
    real = holdings_module._write_tasks

    def failing(*args: object, **kwargs: object) -> object:
        for n, task in enumerate(real(*args, **kwargs)):  # type: ignore[arg-type]
            if n == 6:
                time.sleep(0.2)  # the first ones written, some still in flight
                raise ValueError("a part whose schema does not convert")
            yield task

    monkeypatch.setattr(holdings_module, "_write_tasks", failing)
    with pytest.raises(Exception, match="schema|holdings"):
        HoldingsMaintainer(location).refresh(rebuild=True)
    assert _data_files(folder) == before
    assert _current(location) == current


def test_a_write_failing_while_others_run_leaves_no_written_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One task's write fails while later ones are still running: every file written for the commit goes."""
    import itertools
    import threading
    import time

    from lineage.ingest.holdings import HoldingsMaintainer

    folder = tmp_path / "store"
    location = _many_buckets(folder)
    before, current = _data_files(folder), _current(location)
    real = holdings_module.write_file
    calls = itertools.count()
    lock = threading.Lock()

    def write_file(io: object, metadata: object, tasks: object) -> object:
        with lock:
            n = next(calls)
        if n == 1:
            time.sleep(0.05)
            raise OSError("disk full")
        time.sleep(0.1 if n % 2 else 0.02)
        return real(io, metadata, tasks)  # type: ignore[arg-type]

    monkeypatch.setattr(holdings_module, "write_file", write_file)
    with pytest.raises(Exception):  # noqa: B017, PT011
        HoldingsMaintainer(location).refresh(rebuild=True)
    assert _data_files(folder) == before
    assert _current(location) == current


def test_files_are_committed_in_task_order_whatever_order_they_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Earlier tasks finishing last: the snapshot still lists the files in the tasks' order (flows/identity first)."""
    import time

    from lineage.ingest.holdings import HoldingsMaintainer

    folder = tmp_path / "store"
    location = _many_buckets(folder)
    real = holdings_module.write_file

    def write_file(io: object, metadata: object, tasks: object) -> object:
        tasks = list(tasks)  # type: ignore[call-overload]
        time.sleep(max(0.0, 0.15 - 0.02 * tasks[0].task_id))
        return real(io, metadata, iter(tasks))  # type: ignore[arg-type]

    monkeypatch.setattr(holdings_module, "write_file", write_file)
    HoldingsMaintainer(location).refresh(rebuild=True)
    ids = [int(Path(p).name.split("-")[1]) for p in _current(location)]
    assert ids == sorted(ids), ids


def test_an_identity_bucket_is_not_rewritten_again_once_regrouped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``_coarse`` must not hold for the files this writer makes: refreshes without links keep the identity file."""
    from lineage import Codec, default_taxonomy
    from lineage.ingest.holdings import HoldingsMaintainer
    from lineage.ingest.pipeline import Ingestor

    monkeypatch.setattr(holdings_module, "IDENTITY_ROW_GROUP", 3)
    folder = tmp_path / "store"
    location = _many_buckets(folder, 20)
    identity = _identity_file(folder)
    ingest = Ingestor(folder, "events", taxonomy=default_taxonomy())
    for n in range(3):
        later = make_record("COLLECTED", system="app", system_region="CN", subject_id=f"new-{n}",
                            categories=["user.name"], purpose="essential.service", legal_basis="CONTRACT",
                            occurred_at=T0 + timedelta(days=3 + n))  # fmt: skip
        assert ingest.add(0, 100 + n, Codec().encode_record(later), None, ()) is None
        ingest.flush()
        assert HoldingsMaintainer(location).refresh().events == 1
        assert _identity_file(folder) == identity


# --- 5. what held up (kept as regression tests) ------------------------------------------------------


@pytest.mark.parametrize(
    "kind", [pa.timestamp("us", tz="Asia/Shanghai"), pa.timestamp("ms"), pa.timestamp("s", tz="UTC")]
)
def test_zoned_and_coarse_unit_link_times_equal_duckdbs(tmp_path: Path, kind: pa.DataType) -> None:
    """A zone other than UTC, milliseconds, seconds (ARROW:schema restores them), before 1970 too: DuckDB's instants."""
    folder = tmp_path / "store"
    _store_with_flow(folder, base=datetime(1960, 3, 1, 0, 0, 7, tzinfo=UTC))
    identity = _identity_file(folder)
    rows = pq.read_table(identity)
    i = rows.schema.get_field_index("arrived_at")
    rows = rows.set_column(i, rows.schema.field(i).with_type(kind), rows.column(i).cast(kind))
    pq.write_table(rows, identity)
    store = Store(folder)
    key, links = _by_duckdb(store, "user-2")
    assert key == "dev-2" and links
    with store.session() as q:
        assert sorted(q.person_links(key), key=repr) == sorted(links, key=repr)


def test_threads_sharing_a_reader_get_the_serial_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sessions on 8 threads (the console's workers) over one fresh reader: footers read once, answers unchanged."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(holdings_module, "IDENTITY_ROW_GROUP", 5)
    store = _store_with_flow(tmp_path / "store", people=30)
    ids = [f"{p}-{i}" for p in ("user", "dev") for i in range(30)] * 4
    with store.session() as q:
        q._points = None
        want = {i: linked_identifiers(q, i) for i in ids}
    fresh = Store(tmp_path / "store")

    def ask(identifier: str) -> tuple[str, list[str]]:
        with fresh.session() as q:
            return identifier, linked_identifiers(q, identifier)

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(ask, ids))
    assert all(want[i] == found for i, found in got)
