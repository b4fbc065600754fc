"""Rendering answers for people and machines: JSON, CSV and Markdown. Used by the CLI and the console.

Every answer is a title, a few facts, and named tables of rows (dicts); each format renders that.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

__all__ = ["Document", "csv_cell", "json_values", "render", "spreadsheet_text"]

# a table's rows are typed rows (TypedDicts) or plain dicts; either reads as a mapping of objects
Document = tuple[str, Mapping[str, Any], Mapping[str, Sequence[Mapping[str, object]]]]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def json_values(part: Mapping[str, Any]) -> dict[str, Any]:
    """A document's facts (or tables) as JSON values, as ``render(..., "json")`` writes them (times in ISO 8601)."""
    return {k: _plain(v) for k, v in part.items()}


def _cell(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}" for k, v in value.items() if v)
    return str(value)


#: a CSV cell starting with one of these is run as a formula by spreadsheets (CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(text: str) -> str:
    """Text a spreadsheet shows as text: one that would start a formula gets a leading apostrophe."""
    return "'" + text if text[:1] in _FORMULA_START else text


def csv_cell(value: Any) -> str:
    """A value as a CSV cell, every piece of text in it spreadsheet-safe (each item of a list too).

    The one home of the rule for every CSV we write: the person report, the registers, the affected
    list. Numbers stay numbers (``-3`` is not quoted); names, identifiers and sources are text.
    """
    value = _plain(value)
    if isinstance(value, list):
        return spreadsheet_text(", ".join(csv_cell(v) for v in value))
    if isinstance(value, dict):
        return spreadsheet_text(", ".join(spreadsheet_text(f"{k}") for k, v in value.items() if v))
    if isinstance(value, str):
        return spreadsheet_text(value)
    return _cell(value)


def render(doc: Document, fmt: str) -> str:
    """The document as ``json``, ``csv`` (the tables, one after another, spreadsheet-safe) or ``markdown``."""
    title, facts, tables = doc
    if fmt == "json":
        whole = {"title": title, **_plain(dict(facts)), **_plain(dict(tables))}
        return json.dumps(whole, indent=2, ensure_ascii=False) + "\n"  # a text file's last line ends
    if fmt == "csv":
        out = io.StringIO()
        for name, rows in tables.items():
            if not rows:
                continue
            writer = csv.writer(out)
            writer.writerow(["table", *rows[0].keys()])
            for row in rows:
                writer.writerow([name, *(csv_cell(v) for v in row.values())])
        return out.getvalue()
    lines = [f"# {title}", ""]
    lines += [f"- **{k.replace('_', ' ')}**: {_cell(v)}" for k, v in facts.items()]
    for name, rows in tables.items():
        lines += ["", f"## {name.replace('_', ' ').capitalize()}", ""]
        if not rows:
            lines.append("(none)")
            continue
        keys = list(rows[0].keys())
        lines.append("| " + " | ".join(k.replace("_", " ") for k in keys) + " |")
        lines.append("|" + "---|" * len(keys))
        lines += ["| " + " | ".join(_cell(r[k]).replace("|", "\\|") for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"
