"""Identity lookups read from the identity bucket's row groups by pyarrow: the rows DuckDB's queries give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lineage.store.holdings as holdings_module
from lineage.contract.records import make_record
from lineage.errors import StoreCorruptError
from lineage.store import Session, Store
from lineage.store.catalog import StoreLocation
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


def test_only_the_identity_bucket_gets_small_row_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The identity bucket's files are written in row groups of IDENTITY_ROW_GROUP rows; the runs' keep the table's."""
    monkeypatch.setattr(holdings_module, "IDENTITY_ROW_GROUP", 4)
    _linked_store(tmp_path / "store", 12)
    for path in _identity_files(tmp_path / "store"):
        meta = pq.read_metadata(path)
        sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        assert max(sizes) == 4 and meta.num_rows > 4, sizes
    runs = sorted((tmp_path / "store").glob("warehouse/**/holdings/data/bucket=[0-9]*/*.parquet"))
    assert runs and all(pq.read_metadata(p).num_row_groups == 1 for p in runs)  # 20,000-row groups: one each


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
