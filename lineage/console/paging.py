"""A register table as a page shows it: filtered by text and facets, sorted by any column, one page of rows.

Each table on a page reads its own query parameters, prefixed by its key (``transfers.sort=year``,
``transfers.desc=1``, ``transfers.q=HK``, ``transfers.page=2``, ``transfers.to_region=HK``), so paging
one table keeps the others where they were. Work is done on the server: the browser gets one page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from lineage.console.filters import plain_cell
from lineage.errors import InvalidEventError

__all__ = ["MAX_NUMBER", "PAGE_SIZE", "TableView", "select", "view", "whole_number"]

PAGE_SIZE = 50
#: the largest page or sequence number taken: 18 digits fit the databases' 64-bit integers
MAX_NUMBER = 10**18 - 1
_FACET_CHOICES = 200  # a facet with more distinct values than this is left to the text filter


@dataclass(frozen=True)
class Facet:
    """A column to pick one value of, its choices and the one picked ("" for any)."""

    column: str
    choices: list[str]
    chosen: str


@dataclass(frozen=True)
class TableView:
    """One page of a filtered, sorted table, and what the page needs to link to the others."""

    key: str
    title: str
    columns: list[str]
    rows: list[Mapping[str, object]]
    count: int  # all rows
    matched: int  # rows passing the filters
    page: int
    pages: int
    sort: str
    desc: bool
    text: str
    facets: list[Facet]
    params: dict[str, str]  # every table's parameters on the page, to keep when linking

    def link(self, **change: object) -> str:
        """The page's query string with some of the table's parameters changed (a page change keeps the rest)."""
        params = dict(self.params)
        if "page" not in change:
            params.pop(f"{self.key}.page", None)  # a new sort or filter starts at page one
        for name, value in change.items():
            params[f"{self.key}.{name}"] = "" if value is None else str(value)
        return "?" + urlencode({k: v for k, v in params.items() if v not in ("", "0") or k.endswith(".page")})

    def others(self) -> dict[str, str]:
        """The other tables' parameters (hidden fields of this table's filter form)."""
        return {k: v for k, v in self.params.items() if not k.startswith(f"{self.key}.")}

    def filters(self) -> str:
        """The table's filter and sort parameters alone (for its download link)."""
        keep = {k: v for k, v in self.params.items() if k.startswith(f"{self.key}.") and not k.endswith(".page")}
        return urlencode(keep)


def whole_number(field: str, text: str) -> int:
    """A page or sequence number typed as ASCII digits; else one line naming ``field``.

    ``str.isdigit`` alone also takes "²" and other digits ``int`` refuses, and a number past 64 bits
    overflows the database: both were internal errors.
    """
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_NUMBER)):
        raise InvalidEventError(field, text[:20], f"must be a whole number from 0 to {MAX_NUMBER}")
    return int(text)


def _sort_key(value: object) -> tuple[int, Any]:
    if value is None or value == "":
        return (2, "")  # empty cells last, whichever the direction
    if isinstance(value, bool | int | float):
        return (0, float(value))
    if isinstance(value, datetime):
        return (0, value.timestamp())
    return (1, plain_cell(value).casefold())


def select(
    rows: Sequence[Mapping[str, object]], params: Mapping[str, str], key: str, facets: Sequence[str] = ()
) -> tuple[list[Mapping[str, object]], str, bool, str, dict[str, str]]:
    """The rows passing the table's text and facet filters, sorted; with the sort column, direction, text, facets."""
    columns = list(rows[0].keys()) if rows else []
    sort = params.get(f"{key}.sort", "")
    if sort and sort not in columns:
        raise InvalidEventError(f"{key}.sort", sort[:40], f"is not a column; one of {', '.join(columns)}")
    desc = params.get(f"{key}.desc", "") in ("1", "true")
    text = params.get(f"{key}.q", "").strip()
    chosen = {c: params.get(f"{key}.{c}", "") for c in facets}
    found = list(rows)
    for column, value in chosen.items():
        if value:
            found = [r for r in found if plain_cell(r.get(column)) == value]
    if text:
        needle = text.casefold()
        found = [r for r in found if any(needle in plain_cell(v).casefold() for v in r.values())]
    if sort:
        present = [r for r in found if _sort_key(r.get(sort))[0] < 2]
        empty = [r for r in found if _sort_key(r.get(sort))[0] == 2]
        found = sorted(present, key=lambda r: _sort_key(r.get(sort)), reverse=desc) + empty
    return found, sort, desc, text, chosen


def view(
    key: str, title: str, rows: Sequence[Mapping[str, object]], params: Mapping[str, str], facets: Sequence[str] = ()
) -> TableView:
    """Page ``params[key.page]`` (from 1) of the table, filtered and sorted as its parameters say."""
    found, sort, desc, text, chosen = select(rows, params, key, facets)
    page_text = params.get(f"{key}.page", "1") or "1"
    wanted = whole_number(f"{key}.page", page_text)
    if wanted < 1:
        raise InvalidEventError(f"{key}.page", page_text[:20], "must be a page number from 1")
    pages = max(1, -(-len(found) // PAGE_SIZE))
    page = min(wanted, pages)
    shown = found[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    choices = {c: sorted({plain_cell(r.get(c)) for r in rows} - {""}) for c in facets}
    return TableView(
        key=key, title=title, columns=list(rows[0].keys()) if rows else [], rows=shown, count=len(rows),
        matched=len(found), page=page, pages=pages, sort=sort, desc=desc, text=text,
        facets=[Facet(c, choices[c], chosen[c]) for c in facets if 1 < len(choices[c]) <= _FACET_CHOICES],
        params={k: v for k, v in params.items() if v},
    )  # fmt: skip
