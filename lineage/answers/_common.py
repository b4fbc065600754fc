"""What every answer checks first, and how it resolves a person's identifiers."""

from __future__ import annotations

from datetime import UTC, datetime

from lineage.errors import InvalidEventError
from lineage.store import Session

__all__ = ["check_identifier", "check_time", "linked_identifiers", "now"]


def now() -> datetime:
    """The wall clock, timezone-aware: the default "as of" of an answer."""
    return datetime.now(UTC)


def check_identifier(identifier: str) -> None:
    """Refuse an empty identifier, naming the field (never the value: it may be a person's)."""
    if not isinstance(identifier, str) or not identifier.strip():
        raise InvalidEventError("identifier", identifier, "must be a non-empty string")


def check_time(field_name: str, value: datetime) -> None:
    """Refuse a naive time: it would be read in whatever zone the machine is in."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidEventError(field_name, value.isoformat(), "must be timezone-aware")


def linked_identifiers(q: Session, identifier: str, as_of: datetime) -> list[str]:
    """Every identifier linked to ``identifier`` by events up to ``as_of`` (itself included).

    Step by step from Python: each step is two scans DuckDB answers from one column (a recursive
    SQL macro re-read every link per step: 0.6 s on 20M events).
    """
    known = {identifier}
    frontier = [identifier]
    while frontier:
        found = {i for r in q.rows("links_from", {"ids": frontier}) if r["occurred_at"] <= as_of for i in r["ids"]}
        for one in frontier:
            found |= {r["id"] for r in q.rows("links_to", {"id": one}) if r["occurred_at"] <= as_of}
        frontier = sorted(found - known)
        known |= found
    return sorted(known)
