"""Identity lookups read from the identity bucket's row groups by pyarrow: the rows DuckDB's queries give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lineage.store.holdings as holdings_module
from lineage import Codec, Party, default_taxonomy
from lineage.answers._common import linked_identifiers
from lineage.contract.records import make_record
from lineage.errors import StoreCorruptError
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.store import Session, Store
from lineage.store.catalog import StoreLocation
from lineage.store.forget import forget_rows
from lineage.store.holdings import load_holdings
from lineage.store.point_read import PointReader
from tests.fixtures import store_of

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _linked_store(folder: Path, people: int) -> Store:
    """``people`` persons, each a user id linked to a device (and every third one to a mail id too)."""
    records = []
    for i in range(people):
        links = [f"dev-{i:03d}"] + ([f"mail-{i:03d}"] if i % 3 == 0 else [])
        records.append(make_record(
            "COLLECTED", system="app", system_region="CN", subject_id=f"user-{i:03d}", linked_subject_ids=links,
            categories=["user.device.device_id"], purpose="essential.service", legal_basis="CONTRACT",
            occurred_at=T0 + timedelta(hours=i),
        ))  # fmt: skip
    return store_of(records, folder)


def _by_query(q: Session, key: str) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The person key rows and the link rows as DuckDB's queries give them."""
    files = q.identity_files_of([key])
    return q.lookup("person_of", {"id": key, "files": files}), q.lookup("person_links", {"person": key, "files": files})


def _identity_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("warehouse/**/holdings/data/bucket=-2/*.parquet"))


def test_identity_point_reads_equal_the_queries_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each identifier's person key and each person's links, read by row group, equal the two queries' rows."""
    monkeypatch.setattr(holdings_module, "IDENTITY_ROW_GROUP", 7)  # many row groups: the pruning is exercised
    store = _linked_store(tmp_path / "store", 20)
    (identity,) = _identity_files(tmp_path / "store")
    assert pq.read_metadata(identity).num_row_groups > 5
    keys = [f"{kind}-{i:03d}" for kind in ("user", "dev", "mail") for i in range(20)] + ["nobody", "user-"]
    with store.session() as q:
        assert q._points is not None  # the local store's lookups take the point reads
        linked = 0
        for key in keys:
            persons, links = _by_query(q, key)
            assert q.person_of(key) == (persons[0]["person"] if persons else None), key
            assert sorted(q.person_links(key), key=repr) == sorted(links, key=repr), key
            assert all(link["declared_at"].tzinfo is UTC for link in q.person_links(key))  # type: ignore[union-attr]
            linked += len(links)
    assert linked == 20 + 7  # a link a device, one more every third person: every one found


def test_a_holdings_commit_writes_small_row_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The identity bucket's files come in row groups of IDENTITY_ROW_GROUP rows, the other buckets' of ROW_GROUP."""
    monkeypatch.setattr(holdings_module, "IDENTITY_ROW_GROUP", 4)
    monkeypatch.setattr(holdings_module, "ROW_GROUP", 2)
    _linked_store(tmp_path / "store", 40)
    for path in _identity_files(tmp_path / "store"):
        meta = pq.read_metadata(path)
        sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        assert max(sizes) == 4 and meta.num_rows > 4, sizes
    buckets = (tmp_path / "store").glob("warehouse/**/holdings/data/bucket=[0-9]*/*.parquet")
    runs = [pq.read_metadata(p) for p in buckets]
    sizes = [m.row_group(g).num_rows for m in runs for g in range(m.num_row_groups)]
    assert max(sizes) == 2 and sum(m.num_rows for m in runs) > len(runs) * 2  # some files of several groups


def test_a_row_group_without_statistics_is_read(tmp_path: Path) -> None:
    """A writer that left no statistics: every row group may hold the key, so each is read."""
    path = tmp_path / "nostats.parquet"
    table = pa.table({"kind": ["person"] * 6, "subject": [f"s{i}" for i in range(6)], "other": ["k"] * 6})
    pq.write_table(table, path, row_group_size=2, write_statistics=False)
    reader = PointReader(StoreLocation.embedded(tmp_path))
    assert reader.rows([str(path)], {"subject": "s4", "kind": "person"}, ["other"]) == [{"other": "k"}]
    assert reader.rows([str(path)], {"subject": "s9", "kind": "person"}, ["other"]) == []


def test_a_row_group_whose_range_excludes_the_key_is_not_read(tmp_path: Path) -> None:
    """Only the groups the statistics admit are read: a garbled page of another group goes unnoticed."""
    path = tmp_path / "groups.parquet"
    table = pa.table({"kind": ["link"] * 6, "subject": ["a1", "a2", "b1", "b2", "c1", "c2"], "other": list("uvwxyz")})
    pq.write_table(table, path, row_group_size=2, compression="none")
    reader = PointReader(StoreLocation.embedded(tmp_path))
    assert reader.rows([str(path)], {"subject": "c2", "kind": "link"}, ["other"]) == [{"other": "z"}]
    assert reader.rows([str(path)], {"subject": "c2", "kind": "person"}, ["other"]) == []
    meta = pq.read_metadata(path)
    chunk = meta.row_group(0).column(2)  # the `other` column of group a1..a2, from its first page's header
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    raw = bytearray(path.read_bytes())
    raw[start : start + chunk.total_compressed_size] = b"\xff" * chunk.total_compressed_size
    path.write_bytes(bytes(raw))
    assert reader.rows([str(path)], {"subject": "c1", "kind": "link"}, ["other"]) == [{"other": "y"}]
    with pytest.raises(StoreCorruptError, match="groups.parquet"):
        reader.rows([str(path)], {"subject": "a1", "kind": "link"}, ["other"])


@pytest.mark.parametrize("damage", ["garbled", "missing"])
def test_a_damaged_identity_file_fails_the_lookup_naming_it(tmp_path: Path, damage: str) -> None:
    """An identity file garbled or gone under an open session: StoreCorruptError naming it, in one line."""
    store = _linked_store(tmp_path / "store", 6)
    (identity,) = _identity_files(tmp_path / "store")
    with store.session() as q:
        assert q.person_of("dev-001") == q.person_of("user-001") is not None  # the footer is read and kept
        if damage == "garbled":
            identity.write_bytes(b"\0" * identity.stat().st_size)  # same size: the kept footer no longer fits
        else:
            identity.unlink()
        with pytest.raises(StoreCorruptError, match=identity.name) as raised:
            q.person_links("dev-002")
    assert "\n" not in str(raised.value)
    assert ("missing" in str(raised.value)) == (damage == "missing")


def _store(folder: Path, people: int = 6) -> Store:
    """``people`` persons (a user id linked to a device, every third to a mail id too), and one bulk flow.

    The flow puts a flows-bucket file before the identity file in the holdings' file list: DuckDB's view
    then takes its column types from a file this store's writer made.
    """
    records = []
    for i in range(people):
        links = [f"dev-{i:03d}"] + ([f"mail-{i:03d}"] if i % 3 == 0 else [])
        records.append(make_record(
            "COLLECTED", system="app", system_region="CN", subject_id=f"user-{i:03d}", linked_subject_ids=links,
            categories=["user.device.device_id"], purpose="essential.service", legal_basis="CONTRACT",
            occurred_at=T0 + timedelta(hours=i),
        ))  # fmt: skip
    records.append(make_record(
        "TRANSFERRED", system="app", system_region="CN", bulk_as_of=T0 + timedelta(days=1),
        occurred_at=T0 + timedelta(days=1), categories=["user.device.device_id"], purpose="essential.service",
        recipient=Party(name="sg-warehouse", role="affiliate", region="SG"), transfer_kind="CROSS_BORDER",
        mechanism="pipl.standard_contract",
    ))  # fmt: skip
    return store_of(records, folder)


def _identity_file(folder: Path) -> Path:
    """The identity bucket's one file in the holdings' current snapshot (older ones may wait for orphan removal)."""
    (path,) = [p for p in _current_files(folder) if "/bucket=-2/" in p]
    return Path(path.removeprefix("file://"))


def _current_files(folder: Path) -> list[str]:
    table = load_holdings(StoreLocation.embedded(folder))
    return [task.file.file_path for task in table.scan().plan_files()]


def _query_answer(store: Store, identifier: str) -> tuple[str | None, list[dict[str, object]]]:
    with store.session() as q:
        files = q.identity_files_of([identifier])
        found = q.lookup("person_of", {"id": identifier, "files": files})
        key = str(found[0]["person"]) if found else None
        return key, q.lookup("person_links", {"person": key, "files": q.identity_files_of([key])}) if key else []


def test_statistics_that_are_not_utf8_do_not_fail_the_lookup(tmp_path: Path) -> None:
    """A writer's max cut and incremented byte-wise (not UTF-8) is a valid bound: DuckDB reads the file, so must we.

    Real writers truncate string statistics (DuckDB at 256 bytes, arrow-rs and polars at 64, Trino at
    1,024; identifiers go to 512 characters), and DuckDB's reader ignores a bound that is not UTF-8
    (duckdb#20405). pyarrow's ``Statistics.max`` raises UnicodeDecodeError on it, which the point read
    reports as the file being corrupt: every lookup in the file fails, "restore it from a backup".
    """
    folder = tmp_path / "store"
    _store(folder)
    identity = _identity_file(folder)
    rows = pq.read_table(identity)
    # the same rows, one row group, statistics on kind and subject only: the subject max is once in the footer
    pq.write_table(rows, identity, write_statistics=["kind", "subject"], compression="zstd")
    raw = bytearray(identity.read_bytes())
    footer = len(raw) - 8 - int.from_bytes(raw[-8:-4], "little")
    assert raw.count(b"user-005", footer) == 1
    at = raw.index(b"user-005", footer)
    raw[at : at + 8] = b"user-00\xff"  # still an upper bound byte-wise, not UTF-8
    identity.write_bytes(bytes(raw))
    store = Store(folder)
    expected = _query_answer(store, "user-004")
    assert expected[0] == "dev-004"  # DuckDB reads the file
    with store.session() as q:
        assert q.person_of("user-004") == expected[0]  # StoreCorruptError: ... is corrupt: restore it from a backup


def test_an_identity_file_of_unannotated_binary_columns_gives_the_person_key_as_text(tmp_path: Path) -> None:
    """Strings stored as plain BINARY (no UTF8 annotation: Impala, files imported into Iceberg) are the table's strings.

    DuckDB's view casts them to the table's VARCHAR; the point read handed back ``b'dev-000'`` and
    ``person_of`` made it the key "b'dev-000'": no link found, the person's other identifiers silently lost.
    """
    folder = tmp_path / "store"
    _store(folder)
    identity = _identity_file(folder)
    rows = pq.read_table(identity)
    for name in ("kind", "subject", "via", "other"):
        i = rows.schema.get_field_index(name)
        rows = rows.set_column(i, rows.schema.field(i).with_type(pa.binary()), rows.column(i).cast(pa.binary()))
    pq.write_table(rows, identity, store_schema=False)  # field ids kept: the columns' metadata
    store = Store(folder)
    assert _query_answer(store, "user-000")[0] == "dev-000"  # what DuckDB's query finds
    with store.session() as q:
        assert q.person_of("user-000") == "dev-000"
        assert linked_identifiers(q, "user-000") == ["dev-000", "mail-000", "user-000"]


@pytest.mark.parametrize("unit", ["us", "ns"])
def test_a_naive_timestamp_in_an_identity_file_reads_as_utc_as_the_query_gives_it(tmp_path: Path, unit: str) -> None:
    """``arrived_at`` stored without isAdjustedToUTC (or as INT96, as migrated Spark/Hive files hold it).

    DuckDB (TimeZone UTC) casts it to the view's TIMESTAMPTZ: ``declared_at`` is zoned in UTC. The point
    read gave a naive datetime (a pandas Timestamp for INT96), and an answer "as known then" raised
    TypeError (naive against aware), not a store error.
    """
    folder = tmp_path / "store"
    _store(folder)
    identity = _identity_file(folder)
    rows = pq.read_table(identity)
    i = rows.schema.get_field_index("arrived_at")
    naive = pa.timestamp(unit)
    rows = rows.set_column(i, rows.schema.field(i).with_type(naive), rows.column(i).cast(naive))
    pq.write_table(rows, identity)
    store = Store(folder)
    key, links = _query_answer(store, "user-000")
    assert links and all(link["declared_at"].tzinfo is UTC for link in links)  # type: ignore[union-attr]
    with store.session() as q:
        assert sorted(q.person_links("dev-000"), key=repr) == sorted(links, key=repr)
        assert linked_identifiers(q, "user-000", T0 + timedelta(days=2)) == ["dev-000", "mail-000", "user-000"]


def test_the_refresh_after_a_forget_brings_the_identity_bucket_back_to_small_row_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forget rewrites the identity file in the table's row groups (pyiceberg's delete): the next refresh regroups."""
    monkeypatch.setattr(holdings_module, "IDENTITY_ROW_GROUP", 4)
    folder = tmp_path / "store"
    _store(folder, people=12)
    assert pq.read_metadata(_identity_file(folder)).num_row_groups > 1
    location = StoreLocation.embedded(folder)
    forget_rows(location, ["user-003", "dev-003", "mail-003"], digest=lambda i: f"d-{i}", grace_s=0)
    assert pq.read_metadata(_identity_file(folder)).num_row_groups == 1  # the forget's own rewrite
    ingest = Ingestor(folder, "events", taxonomy=default_taxonomy())
    later = make_record("COLLECTED", system="app", system_region="CN", subject_id="user-100", categories=["user.name"],
                        purpose="essential.service", legal_basis="CONTRACT", occurred_at=T0 + timedelta(days=3))
    assert ingest.add(0, 13, Codec().encode_record(later), None, ()) is None  # a change that links no one
    ingest.flush()
    HoldingsMaintainer(location).refresh()
    meta = pq.read_metadata(_identity_file(folder))
    assert max(meta.row_group(g).num_rows for g in range(meta.num_row_groups)) == 4
    with Store(folder).session() as q:
        assert q.person_of("user-003") is None and q.person_of("user-004") == "dev-004"


def test_a_list_column_is_read_beside_text_read_as_dictionaries(tmp_path: Path) -> None:
    """A nested column asked with flat text ones comes back as its list (only flat text is read as dictionaries)."""
    path = tmp_path / "lists.parquet"
    table = pa.table({"subject": ["s1", "s2"], "kind": ["run", "run"], "categories": [["a", "b"], None],
                      "holder": ["h1", "h2"]})  # fmt: skip
    pq.write_table(table, path)
    reader = PointReader(StoreLocation.embedded(tmp_path))
    found = reader.rows([str(path)], {"subject": "s1", "kind": "run"}, ["categories", "holder"])
    assert found == [{"categories": ["a", "b"], "holder": "h1"}]
