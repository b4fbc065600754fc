"""The row buffer's Arrow conversion: every column, null parties, the offset filter, an empty buffer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from lineage import Party
from lineage.contract.records import Record, make_record
from lineage.store.tables import COLUMNS, ColumnBuffer


def _records() -> list[Record]:
    at = datetime(2026, 5, 1, tzinfo=UTC)
    collected = make_record(
        "COLLECTED",
        system="web",
        system_region="CN",
        subject_id="user-1",
        occurred_at=at,
        categories=["user.contact.email", "user.name"],
        purpose="essential.service",
        legal_basis="CONTRACT",
        subject_jurisdiction="CN",
        retention_days=365,
    )
    shared = make_record(
        "SHARED",
        system="web",
        system_region="CN",
        subject_id="user-2",
        occurred_at=at,
        categories=["user.financial.bank_account"],
        purpose="essential.service.payment_processing",
        recipient=Party(name="pay-sdk", role="processor", region="CN"),
    )
    return [collected, shared, collected]


def _expected(records: list[Record], offsets: list[int]) -> pa.Table:
    """The same rows built the slow, obvious way: one flat dict per record."""
    rows: list[dict[str, Any]] = []
    for record, offset in zip(records, offsets, strict=True):
        row = {k: v for k, v in record.items() if k not in ("holder", "recipient")}
        for party in ("holder", "recipient"):
            value = record[party]
            for part in ("name", "role", "region"):
                row[f"{party}_{part}"] = value[part] if value is not None else None
        row.update(origin="topic", kafka_partition=4, kafka_offset=offset)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=COLUMNS)


def test_table_matches_a_row_by_row_conversion() -> None:
    """Every column equals a dict-per-row conversion; a record without recipient has null recipient columns."""
    buffer = ColumnBuffer()
    records = _records()
    for offset, record in enumerate(records, start=10):
        buffer.append(record, offset)
    table = buffer.table("topic", 4)
    assert table.schema == COLUMNS
    assert table.equals(_expected(records, [10, 11, 12]))
    assert table.column("recipient_name").to_pylist() == [None, "pay-sdk", None]


def test_table_keeps_only_offsets_above_after() -> None:
    """``after`` drops rows already stored; an empty buffer gives an empty table of the same schema."""
    buffer = ColumnBuffer()
    records = _records()
    for offset, record in enumerate(records, start=10):
        buffer.append(record, offset)
    assert buffer.table("topic", 4, after=10).equals(_expected(records[1:], [11, 12]))
    assert buffer.count_above(10) == 2
    empty = ColumnBuffer().table("topic", 4)
    assert empty.num_rows == 0 and empty.schema == COLUMNS
