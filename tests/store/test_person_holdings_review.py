"""A person's holdings on stores the point read cannot read as DuckDB does: the query's answer, from a review."""

from __future__ import annotations

import decimal
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lineage.store.holdings as holdings_module
from lineage import Party
from lineage.contract.records import Record, make_record
from lineage.errors import StoreError
from lineage.store import Session, Store
from lineage.store.layout import RESETS_BUCKET, buckets_of
from tests.fixtures import at_minute, email_collected, store_of
from tests.store.test_person_holdings import _stored

IDS = ["s1", "s2", "s3"]


def _records() -> list[Record]:
    """Three people collected (30 days' retention), then three bulk exports of everyone to Hong Kong."""
    records = [email_collected(s, at_minute(i), retention_days=30) for i, s in enumerate(IDS)]
    records += [make_record(
        "TRANSFERRED", system="app", system_region="CN", subject_id=None, bulk_as_of=at_minute(m),
        occurred_at=at_minute(m), categories=["user.contact.email"], purpose="essential.service",
        recipient=Party(name="hk", role="processor", region="HK"), transfer_kind="CROSS_BORDER",
        mechanism="gba.standard_contract") for m in (5, 10, 15)]  # fmt: skip
    return records


def _rewrite(paths: list[Path], change: Callable[[pa.Table], pa.Table]) -> None:
    """Each file rewritten as another writer would, its row count kept (what the footer check compares)."""
    assert paths
    for path in paths:
        rows = pq.read_table(path)
        changed = change(rows)
        assert changed.num_rows == rows.num_rows
        pq.write_table(changed, path)


def _holdings(folder: Path, bucket: str = "*") -> list[Path]:
    return sorted(folder.glob(f"warehouse/**/holdings/data/bucket={bucket}/*.parquet"))


def _run_files(folder: Path) -> list[Path]:
    return [p for p in _holdings(folder) if "bucket=-" not in str(p)]


def _both(q: Session, ids: list[str], as_of: datetime) -> tuple[list[Any], list[Any]]:
    params = {"ids": ids, "as_of": as_of, "buckets": buckets_of(ids), "files": q.holdings_files_of(ids)}
    key = lambda r: sorted((k, repr(v)) for k, v in r.items())  # noqa: E731
    return sorted(q.lookup("subject_holdings", params), key=key), sorted(q.subject_holdings(ids, as_of), key=key)


def test_holdings_files_without_gen_as_layout_2_wrote_them_are_answered(tmp_path: Path) -> None:
    """Files of layout 2 (no ``gen``, which the view reads as NULL): the same rows as the query's."""
    store_of(_records(), tmp_path)
    _rewrite(_holdings(tmp_path), lambda t: t.drop_columns(["gen"]))
    with Store(tmp_path).session() as q:
        by_query, by_points = _both(q, IDS, at_minute(30))
    assert len(by_query) == 12 and by_points == by_query


def test_a_reset_file_without_gen_is_read_as_the_query_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reset file lacking ``gen``: the query's rows."""
    monkeypatch.setattr(holdings_module, "MAX_FILES", 99)
    _stored(tmp_path, [[email_collected("s1", at_minute(10))], [email_collected("s1", at_minute(5))]])
    _rewrite(_holdings(tmp_path, str(RESETS_BUCKET)), lambda t: t.drop_columns(["gen"]))
    with Store(tmp_path).session() as q:
        by_query, by_points = _both(q, ["s1"], at_minute(30))
    assert by_query and by_points == by_query


def test_a_run_file_missing_a_column_fails_with_the_stores_error(tmp_path: Path) -> None:
    """A run file without ``encrypted``: the store's one-line error, as the query gives it, not a KeyError."""
    store_of(_records(), tmp_path)
    _rewrite(_run_files(tmp_path), lambda t: t.drop_columns(["encrypted"]))
    with Store(tmp_path).session() as q, pytest.raises(StoreError):
        q.subject_holdings(IDS, at_minute(30))


def test_an_ended_at_past_year_9999_is_answered_as_the_query_answers(tmp_path: Path) -> None:
    """An end stored as DuckDB's infinity (INT64_MAX us): never converted by the query, so answered."""
    store_of(_records(), tmp_path)

    def infinite(t: pa.Table) -> pa.Table:
        i = t.schema.get_field_index("ended_at")
        return t.set_column(i, t.schema.field(i), pa.array([2**63 - 1] * t.num_rows, t.schema.field(i).type))

    _rewrite(_run_files(tmp_path), infinite)
    with Store(tmp_path).session() as q:
        by_query, by_points = _both(q, IDS, at_minute(30))
    assert len(by_query) == 12 and by_points == by_query


def test_a_naive_as_of_is_read_as_utc_as_the_lookup_reads_it(tmp_path: Path) -> None:
    """A time without an offset is UTC, as DuckDB reads it."""
    store_of(_records(), tmp_path)
    with Store(tmp_path).session() as q:
        by_query, by_points = _both(q, IDS, at_minute(30).replace(tzinfo=None))
    assert by_query and by_points == by_query


# From a second review: files of other writers whose encodings or types the point read must not guess at.


def _not_flows(folder: Path) -> list[Path]:
    """The run and identity files (the flows file stays as written: the view takes its types from it)."""
    return [p for p in _holdings(folder) if "bucket=-1/" not in str(p)]


def _retype(
    folder: Path, column: str, kind: pa.DataType, values: Callable[[list[Any]], list[Any]] | None = None
) -> None:
    for p in _not_flows(folder):
        t = pq.read_table(p)
        i = t.schema.get_field_index(column)
        col = t.column(i).cast(kind) if values is None else pa.array(values(t.column(i).to_pylist()), kind)
        pq.write_table(t.set_column(i, t.schema.field(i).with_type(kind), col), p)


@pytest.mark.parametrize("encoding", ["DELTA_BYTE_ARRAY", "DELTA_LENGTH_BYTE_ARRAY"])
def test_text_in_delta_encodings_is_read_not_called_corrupt(tmp_path: Path, encoding: str) -> None:
    """Parquet v2 writers' delta-encoded text (DuckDB's V2, parquet-mr): read, not read into dictionaries."""
    store_of([*_records(), email_collected("s9", at_minute(2), linked_subject_ids=["dev-9"])], tmp_path)
    for p in _not_flows(tmp_path):
        t = pq.read_table(p)
        text = {f.name: encoding for f in t.schema if pa.types.is_string(f.type)}
        pq.write_table(t, p, use_dictionary=False, column_encoding=text)
    with Store(tmp_path).session() as q:
        key = q.lookup("person_of", {"id": "s9", "files": q.identity_files_of(["s9"])})[0]["person"]
        assert q.person_of("s9") == key
        by_query, by_points = _both(q, IDS, at_minute(30))
    assert len(by_query) == 12 and by_points == by_query


@pytest.mark.parametrize(
    ("column", "kind", "values"),
    [
        ("retention_days", pa.decimal128(10, 0), lambda v: [None if x is None else decimal.Decimal(x) for x in v]),
        ("retention_days", pa.string(), None),
        ("retention_days", pa.float64(), None),
        ("bucket", pa.string(), None),
        ("via_bulk", pa.string(), None),
    ],
)
def test_a_column_of_another_type_is_answered_as_the_query_answers(
    tmp_path: Path, column: str, kind: pa.DataType, values: Callable[[list[Any]], list[Any]] | None
) -> None:
    """A column stored as another type (a decimal, text, a float): the query's rows and types, not [] or a TypeError."""
    store_of(_records(), tmp_path)
    _retype(tmp_path, column, kind, values)
    with Store(tmp_path).session() as q:
        by_query, by_points = _both(q, IDS, at_minute(30))
    assert len(by_query) == 12 and by_points == by_query
    assert [[type(v) for v in r.values()] for r in by_points] == [[type(v) for v in r.values()] for r in by_query]


def test_non_ascii_text_stored_as_unannotated_bytes_is_answered_as_the_query_answers(tmp_path: Path) -> None:
    """A person and a holder named in Chinese, stored as plain BINARY: the same rows whichever path reads them."""
    shop = Party(name="顺丰速运", role="internal", region="CN")
    store_of([*_records(), email_collected("s1", at_minute(1), holder=shop),
              email_collected("用户-1", at_minute(2), linked_subject_ids=["设备-1"])], tmp_path)  # fmt: skip
    for name in ("kind", "subject", "holder", "via", "other"):
        _retype(tmp_path, name, pa.binary())
    with Store(tmp_path).session() as q:
        assert q.person_of("用户-1") == (lambda f: f[0]["person"] if f else None)(
            q.lookup("person_of", {"id": "用户-1", "files": q.identity_files_of(["用户-1"])})
        )
        for ids in (["用户-1"], ["s1"]):
            by_query, by_points = _both(q, ids, at_minute(30))
            assert by_points == by_query


def test_the_views_read_every_file_as_the_tables_types_whatever_the_first_file(tmp_path: Path) -> None:
    """Every holdings file (the flows' too) with text as plain bytes and zone-less times: str and UTC, as the table."""
    store_of(_records(), tmp_path)
    for p in _holdings(tmp_path):
        t = pq.read_table(p)
        for i, f in enumerate(t.schema):
            if pa.types.is_string(f.type):
                t = t.set_column(i, f.with_type(pa.binary()), t.column(i).cast(pa.binary()))
            elif pa.types.is_timestamp(f.type):
                naive = pa.timestamp("us")
                t = t.set_column(i, f.with_type(naive), t.column(i).cast(naive))
        pq.write_table(t, p)
    with Store(tmp_path).session() as q:
        by_query, by_points = _both(q, IDS, at_minute(30))
    assert len(by_query) == 12 and by_points == by_query
    assert {type(r["holder"]) for r in by_query} == {str}
    assert all(r["arrived_at"].tzinfo is not None for r in by_query)


def test_event_files_of_another_writers_types_answer_as_the_tables_types(tmp_path: Path) -> None:
    """Every event file with text as plain bytes and zone-less times: the same events, typed as the table."""
    store_of(_records(), tmp_path)
    params = {"ids": ["s1"], "as_of": at_minute(30), "files": None}
    with Store(tmp_path).session() as q:
        before = q.lookup("subject_events", params)
    for p in sorted(tmp_path.glob("warehouse/**/events/data/**/*.parquet")):
        t = pq.read_table(p)
        for i, f in enumerate(t.schema):
            if pa.types.is_string(f.type) and f.name != "subject_id":
                t = t.set_column(i, f.with_type(pa.binary()), t.column(i).cast(pa.binary()))
            elif pa.types.is_timestamp(f.type):
                t = t.set_column(i, f.with_type(pa.timestamp("us")), t.column(i).cast(pa.timestamp("us")))
        pq.write_table(t, p)
    with Store(tmp_path).session() as q:
        assert before and q.lookup("subject_events", params) == before


def test_another_writers_extra_columns_of_any_name_are_kept_out_of_the_way(tmp_path: Path) -> None:
    """Files with columns of their own named as SQL keywords or with quotes: the same rows as before."""
    store_of(_records(), tmp_path)
    with Store(tmp_path).session() as q:
        before = _both(q, IDS, at_minute(30))
    for p in _holdings(tmp_path):
        t = pq.read_table(p)
        extra = pa.array(["x"] * t.num_rows)
        pq.write_table(t.append_column("order", extra).append_column('a "quoted" name', extra), p)
    with Store(tmp_path).session() as q:
        assert _both(q, IDS, at_minute(30)) == before and len(before[0]) == 12


# From a third review: names DuckDB matches case aside, and a list where the table has text.


def _renamed(path: Path, old: str, new: str) -> None:
    t = pq.read_table(path)
    pq.write_table(t.rename_columns([new if n == old else n for n in t.column_names]), path)


def test_a_first_file_naming_a_column_in_other_case_keeps_its_values(tmp_path: Path) -> None:
    """The first holdings file's ``Holder`` is the table's ``holder``, as DuckDB reads names."""
    store_of(_records(), tmp_path)
    _renamed(_holdings(tmp_path)[0], "holder", "Holder")
    with Store(tmp_path).session() as q:
        by_query, by_points = _both(q, IDS, at_minute(30))
    assert len(by_query) == 12 and {r["holder"] for r in by_query} == {"app", "hk"} and by_points == by_query


def test_a_subject_column_in_other_case_still_finds_the_person(tmp_path: Path) -> None:
    """Every holdings file naming ``Subject``: the person's rows, not none."""
    store_of(_records(), tmp_path)
    for p in _holdings(tmp_path):
        _renamed(p, "subject", "Subject")
    with Store(tmp_path).session() as q:
        by_query, by_points = _both(q, IDS, at_minute(30))
    assert len(by_query) == 12 and by_points == by_query


def test_a_subject_stored_as_a_list_is_refused_naming_the_column(tmp_path: Path) -> None:
    """A list where the table has text: one line naming the column, not the list's text matching no one."""
    store_of(_records(), tmp_path)
    for p in _holdings(tmp_path):
        t = pq.read_table(p)
        i = t.schema.get_field_index("subject")
        lists = pa.array([None if x is None else [x] for x in t.column(i).to_pylist()], pa.list_(pa.string()))
        pq.write_table(t.set_column(i, pa.field("subject", lists.type), lists), p)
    with pytest.raises(StoreError, match=r"hold subject as VARCHAR\[\], where the table has VARCHAR") as refused:
        with Store(tmp_path).session() as q:
            _both(q, IDS, at_minute(30))
    assert "\n" not in str(refused.value)


def test_a_files_own_data_file_column_is_left_out(tmp_path: Path) -> None:
    """A column ``data_file`` of another writer's: the view's own (each row's file) is the one read."""
    store_of(_records(), tmp_path)
    for p in _holdings(tmp_path):
        t = pq.read_table(p)
        pq.write_table(t.append_column("data_file", pa.array(["elsewhere"] * t.num_rows)), p)
    with Store(tmp_path).session() as q:
        by_query, by_points = _both(q, IDS, at_minute(30))
    assert len(by_query) == 12 and by_points == by_query


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("holder", lambda v: {"name": v}),  # a struct where the table has text
        ("categories", lambda v: None if v is None else ",".join(v)),  # text where the table has a list
    ],
)
def test_a_nested_value_where_the_table_has_another_shape_is_refused(
    tmp_path: Path, column: str, values: Callable[[Any], Any]
) -> None:
    """A struct for text, text for a list: one line naming the column, never the struct's text compared."""
    store_of(_records(), tmp_path)
    for p in _holdings(tmp_path):
        t = pq.read_table(p)
        i = t.schema.get_field_index(column)
        changed = pa.array([values(v) for v in t.column(i).to_pylist()])
        pq.write_table(t.set_column(i, pa.field(column, changed.type), changed), p)
    with pytest.raises(StoreError, match=f"hold {column} as .*where the table has"):
        with Store(tmp_path).session() as q:
            _both(q, IDS, at_minute(30))


def test_a_files_own_filename_column_is_kept_out_of_the_way(tmp_path: Path) -> None:
    """A column ``filename`` (DuckDB's default name for its own file column) in files of another writer's types.

    The same rows as before: names in other case and zone-less times still read as the table's (a
    first version read such files through pyarrow, which found no one under ``Subject``).
    """
    store_of(_records(), tmp_path)
    params = {"ids": ["s1"], "as_of": at_minute(30), "files": None}
    with Store(tmp_path).session() as q:
        before, events = _both(q, IDS, at_minute(30)), q.lookup("subject_events", params)
    for p in _holdings(tmp_path):
        _renamed(p, "subject", "Subject")
    for p in tmp_path.glob("warehouse/**/events/data/**/*.parquet"):
        t = pq.read_table(p)
        for i, f in enumerate(t.schema):
            if pa.types.is_timestamp(f.type):
                t = t.set_column(i, f.with_type(pa.timestamp("us")), t.column(i).cast(pa.timestamp("us")))
        pq.write_table(t, p)
    for p in [*_holdings(tmp_path), *tmp_path.glob("warehouse/**/events/data/**/*.parquet")]:
        t = pq.read_table(p)
        pq.write_table(t.append_column("filename", pa.array(["elsewhere"] * t.num_rows)), p)
    with Store(tmp_path).session() as q:
        assert _both(q, IDS, at_minute(30)) == before and len(before[0]) == 12
        assert events and q.lookup("subject_events", params) == events


def test_files_with_both_names_of_the_file_column_are_refused_in_one_line(tmp_path: Path) -> None:
    """Columns ``filename`` and ``lineage_data_file`` of a writer's own: one line saying to rename one."""
    store_of(_records(), tmp_path)
    for p in _holdings(tmp_path):
        t = pq.read_table(p)
        extra = pa.array(["x"] * t.num_rows)
        pq.write_table(t.append_column("filename", extra).append_column("lineage_data_file", extra), p)
    with pytest.raises(StoreError, match="columns named both filename and lineage_data_file") as refused:
        with Store(tmp_path).session() as q:
            _both(q, IDS, at_minute(30))
    assert "\n" not in str(refused.value)
