"""What every answer checks first, and how it resolves a person's identifiers."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from lineage.errors import InvalidEventError
from lineage.store import Session

__all__ = ["check_case", "check_identifier", "check_time", "linked_identifiers", "now"]

_CASE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:#-]{0,63}")


def now() -> datetime:
    """The wall clock, timezone-aware: the default "as of" of an answer."""
    return datetime.now(UTC)


def check_identifier(identifier: str) -> None:
    """Refuse an empty identifier, naming the field (never the value: it may be a person's)."""
    if not isinstance(identifier, str) or not identifier.strip():
        raise InvalidEventError("identifier", identifier, "must be a non-empty string")


def check_case(case_ref: str | None, field: str = "case_reference") -> str:
    """A case reference (ticket, request number): required, one line, and safe in a file name."""
    if not case_ref or not _CASE.fullmatch(case_ref):
        raise InvalidEventError(
            field, case_ref, "is required: 1 to 64 of A-Z a-z 0-9 . _ : # - (the request or ticket id)", personal=False
        )
    return case_ref


def check_time(field_name: str, value: datetime) -> None:
    """Refuse a naive time: it would be read in whatever zone the machine is in."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidEventError(field_name, value.isoformat(), "must be timezone-aware")


def linked_identifiers(q: Session, identifier: str, links_as_of: datetime | None = None) -> list[str]:
    """Every identifier linked to ``identifier`` (itself included), transitively.

    ``links_as_of=None`` follows every link the store holds ("known now"): a link says two
    identifiers were one person all along, before it was learned too, so a person asking what was
    held about them in June gets the data of a device found in July to be theirs. A time follows
    only the links declared by events up to it ("as known then"), for an audit of what could have
    been answered at that time.

    Two lookups, whatever the number of identifiers: the holdings keep a person key per linked
    identifier (merged as links arrive), and the person's links under that key.
    """
    key = q.person_of(identifier)
    if key is None:
        return [identifier]
    links = q.person_links(key)
    edges: dict[str, set[str]] = {}
    for link in links:
        if links_as_of is None or link["declared_at"] <= links_as_of:
            edges.setdefault(link["a"], set()).add(link["b"])
            edges.setdefault(link["b"], set()).add(link["a"])
    known, frontier = {identifier}, [identifier]
    while frontier:
        for other in edges.get(frontier.pop(), ()):
            if other not in known:
                known.add(other)
                frontier.append(other)
    return sorted(known)
