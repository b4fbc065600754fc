"""The tables' columns as plain data (``lineage.store.layout``) agree with the Arrow schemas and with DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from lineage.store.layout import EVENT_FIELDS, HOLDING_FIELDS, KINDS
from lineage.store.tables import COLUMNS, HOLDINGS_COLUMNS, arrow_schema


def test_each_kind_is_the_type_duckdb_reads_from_a_parquet_column_of_its_arrow_type(tmp_path: Path) -> None:
    """A column no file holds yet is added as NULL of ``KINDS[kind]``: the type DuckDB gives one that a file holds."""
    fields = [(f"c_{i}", kind) for i, kind in enumerate(KINDS)]
    path = tmp_path / "kinds.parquet"
    pq.write_table(arrow_schema(fields).empty_table(), path)
    con = duckdb.connect()
    read = con.read_parquet(str(path))
    assert dict(zip(read.columns, [str(t) for t in read.types], strict=True)) == {
        name: KINDS[kind] for name, kind in fields
    }


def test_the_arrow_schemas_are_the_layout_s_columns_in_order() -> None:
    """Every column of both tables, in order, with an Arrow type of its kind."""
    assert COLUMNS.names == [name for name, _ in EVENT_FIELDS]
    assert HOLDINGS_COLUMNS.names == [name for name, _ in HOLDING_FIELDS]
    assert {kind for _, kind in (*EVENT_FIELDS, *HOLDING_FIELDS)} <= set(KINDS)
