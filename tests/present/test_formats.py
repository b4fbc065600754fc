"""CSV output is spreadsheet-safe in one place: every text cell, and every item of a list cell."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from lineage.present.formats import Document, render

FORMULA = "=cmd|'/C calc'!A0"


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_list_cells_are_formula_quoted() -> None:
    """A formula as the first item of a list cell (a source, a recipient) is quoted, like a plain text cell."""
    doc: Document = ("t", {}, {"holdings": [{"sources": [FORMULA, "+1"], "holder": "@sum(A1)", "days": -3,
                                             "at": datetime(2026, 1, 1, tzinfo=UTC)}]})  # fmt: skip
    header, row = _cells(render(doc, "csv"))
    cell = dict(zip(header, row, strict=True))
    assert cell["sources"] == "'" + FORMULA + ", '+1"
    assert cell["holder"] == "'@sum(A1)"
    assert cell["days"] == "-3" and cell["at"] == "2026-01-01T00:00:00+00:00"  # numbers and times stay as they are


def test_no_cell_starts_a_formula() -> None:
    """Whatever the value's shape, no CSV cell begins with a formula character."""
    values: list[object] = [FORMULA, [FORMULA], ["ok", FORMULA], {FORMULA: True}, "\tx", "-x", ("@a",)]
    doc: Document = ("t", {}, {"t": [{"v": v} for v in values]})
    for row in _cells(render(doc, "csv"))[1:]:
        assert row[1][:1] not in ("=", "+", "-", "@", "\t", "\r"), row
