"""How the console's pages say things to people: taxonomy words instead of keys, and one time format.

The Jinja filters live here (one home): ``term`` shows a category or purpose by its name with the
key in the title attribute, ``when`` shows a time in UTC to the minute, ``cell`` any table value
(a column of category or purpose keys through ``term``), and ``rows`` a table's rows, each value
through ``cell``. ``install`` puts them on the console's template environment; downloads keep the
full values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from markupsafe import Markup, escape

from lineage.contract.taxonomy import Taxonomy
from lineage.present.datamap import DataMap

__all__ = ["TIME_FORMAT", "Words", "install", "plain_cell", "when"]

#: the one format of a time on a page: UTC, to the minute (seconds and microseconds are noise to a reader)
TIME_FORMAT = "%Y-%m-%d %H:%M UTC"
#: columns whose values are taxonomy keys
_CATEGORY_COLUMNS = frozenset({"category", "categories", "sensitive_categories", "still_held"})
_PURPOSE_COLUMNS = frozenset({"purpose", "purposes"})
# the root every personal-data category shares says nothing to a reader
_SILENT_ROOTS = frozenset({"user"})
_UPPER = {"id": "ID", "ip": "IP", "ai": "AI", "sms": "SMS", "url": "URL", "gps": "GPS", "dpo": "DPO"}


def when(value: object) -> str:
    """A time (a datetime, or ISO 8601 text as the audit trail stores it) in the one format; other text as is."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime(TIME_FORMAT)
    return "" if value is None else str(value)


def plain_cell(value: object) -> str:
    """A value as a page shows it: times in the one format, yes/no, lists joined, set flags named."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(plain_cell(v) for v in value)
    if isinstance(value, Mapping):  # flags such as the sensitivity marks: the ones set, or "no"
        return ", ".join(f"{k}" for k, v in value.items() if v) or "no"
    return str(value)


def _words(segment: str) -> str:
    return " ".join(_UPPER.get(w, w) for w in segment.split("_"))


def name_of(key: str) -> str:
    """A dotted taxonomy key in words: its parent and itself (``user.contact.email`` is "Contact: email")."""
    parts = key.split(".")
    if len(parts) > 1 and parts[0] in _SILENT_ROOTS:
        parts = parts[1:]
    shown = parts[-2:]
    text = ": ".join(_words(p) for p in shown)
    return text[:1].upper() + text[1:]


class Words:
    """The taxonomy's words for its keys, as page fragments (autoescaped markup)."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        """Name the keys of ``taxonomy``; keys it does not know are shown as they are."""
        self._keys = {"category": frozenset(taxonomy.categories), "purpose": frozenset(taxonomy.purposes)}

    def term(self, key: object, kind: str = "category") -> Markup:
        """A category (or, with ``kind="purpose"``, a purpose) by its name, its key in the title; unknown keys as is."""
        if not isinstance(key, str):
            return Markup(escape(plain_cell(key)))
        if key not in self._keys[kind]:
            return Markup(escape(key))
        # the key alone in the title: a description per cell would double a wide table's weight
        return Markup('<span class="term" title="{}">{}</span>').format(key, name_of(key))

    def name(self, key: str, kind: str = "category") -> str:
        """A key's name as plain text (for the map's script, which sets text, never markup)."""
        return name_of(key) if key in self._keys[kind] else key

    def readable_map(self, m: DataMap) -> DataMap:
        """The data map with its flows' categories named and their times in the one format."""
        edges = [dataclasses.replace(x, facts={**x.facts, "categories": [self.name(c) for c in x.facts["categories"]],
                 "first_seen": when(x.facts["first_seen"]), "last_seen": when(x.facts["last_seen"])})
                 for x in m.edges]  # fmt: skip
        return dataclasses.replace(m, edges=edges)

    def terms(self, keys: Iterable[object], kind: str = "category") -> Markup:
        """Several keys, each through ``term``, comma-separated."""
        return Markup(", ").join(self.term(k, kind) for k in keys)

    def cell(self, value: object, column: str = "") -> Markup | str:
        """A table value: a category or purpose column in words, anything else through ``plain_cell``."""
        kind = "category" if column in _CATEGORY_COLUMNS else "purpose" if column in _PURPOSE_COLUMNS else ""
        if kind and isinstance(value, (list, tuple)):
            return self.terms(value, kind)
        if kind:
            return self.term(value, kind)
        if column == "at" or column.endswith("_at"):  # the audit trail keeps its times as ISO text
            return when(value)
        return plain_cell(value)

    def rows(self, rows: Sequence[Mapping[str, object]], limit: int) -> Markup:
        """The first ``limit`` rows as table rows, each value through ``cell``, escaped.

        One call a table, not a template call a cell: a person page has ~600 cells, and Jinja's
        per-call machinery was most of its rendering (2.4 ms a page, 1M subjects).
        """
        cell = self.cell
        return Markup("").join(
            Markup("<tr>" + "".join(f"<td>{escape(cell(v, c))}</td>" for c, v in row.items()) + "</tr>")
            for row in rows[:limit]
        )


class Environment(Protocol):
    """The part of a Jinja2 environment the filters go into (Jinja2 itself is imported by the app alone)."""

    @property
    def filters(self) -> MutableMapping[str, Any]:
        """Filters by name."""

    @property
    def globals(self) -> MutableMapping[str, Any]:
        """Names every template sees."""


def install(env: Environment, taxonomy: Taxonomy) -> Words:
    """Register ``term``, ``purpose``, ``when`` and ``cell`` on ``env`` for every template."""
    words = Words(taxonomy)
    env.filters["term"] = words.term
    env.filters["purpose"] = lambda key: words.term(key, "purpose")
    env.filters["when"] = when
    env.filters["cell"] = words.cell
    env.globals["cell"] = words.cell
    env.filters["rows"] = words.rows
    return words
