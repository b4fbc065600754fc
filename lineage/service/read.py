"""One pinned read of the store, and the stamp every answer read from it carries.

A stamp says what an answer rests on, so a reader can judge it and give it again: the events
snapshot it read (``--snapshot`` answers the same later), how many stored events the holdings did
not reflect yet (the maintainer's lag), events stamped after now, the time it was judged as of,
and which identifier links it followed. The doors print it as they print the rest: facts of the
document, a note on the command line's stderr.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lineage.present.formats import Document
from lineage.present.reports import links_fact
from lineage.store import Store

__all__ = ["STAMP_FACTS", "Stamp", "future_events", "hold", "lag_note", "stamp_of", "stamped"]


#: the facts a stamp adds to a document, in their order (``Stamp.facts``)
STAMP_FACTS = ("as_of", "identifier_links", "warning", "store_snapshot", "holdings_behind", "lag")


def hold(store: Store) -> Store:
    """The store held at one state for one answer: all its queries and its stamp read that state."""
    return store.pinned()


@dataclass(frozen=True, slots=True)
class Stamp:
    """What an answer rests on (see the module docstring); ``facts`` is how a document carries it."""

    snapshot: int | None
    behind: int
    as_of: datetime | None = None
    links: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def lag(self) -> str | None:
        """The sentence saying the holdings lag the stored events, or None when they do not."""
        return lag_note(self.snapshot, self.behind)

    def facts(self) -> dict[str, object]:
        """The stamp as document facts, in the order every answer shows them."""
        facts: dict[str, object] = {}
        if self.as_of is not None:
            facts["as_of"] = self.as_of
        if self.links is not None:
            facts["identifier_links"] = links_fact(self.links)
        if self.warnings:
            facts["warning"] = "; ".join(self.warnings)
        facts["store_snapshot"] = self.snapshot
        facts["holdings_behind"] = self.behind
        if self.lag:
            facts["lag"] = self.lag
        return facts


def stamp_of(
    held: Store, as_of: datetime | None = None, links: str | None = None, warnings: tuple[str | None, ...] = ()
) -> Stamp:
    """The stamp of an answer read from ``held`` (a ``hold``), judged ``as_of``, with these warnings."""
    return Stamp(held.snapshot_id, held.behind, as_of, links, tuple(w for w in warnings if w))


def stamped(doc: Document, stamp: Stamp) -> Document:
    """The document with its stamp's facts after its own (a fact both hold keeps its place)."""
    title, facts, tables = doc
    return title, {**facts, **stamp.facts()}, tables


def lag_note(snapshot: int | None, behind: int) -> str | None:
    """The holdings are ``behind`` events behind the store: said in one sentence, or None."""
    if not behind:
        return None
    return (
        f"the holdings are {behind} event(s) behind the store: this answer reads events snapshot {snapshot}, "
        "without them (run `lineage holdings` to bring them up to date)"
    )


#: the latest event time of each snapshot read lately (location, snapshot) -> time: a snapshot never
#: changes, so each is scanned once per process, not once per answer (a person page at a lookup's speed)
_LATEST: dict[tuple[str, int | None], datetime | None] = {}
_LATEST_KEPT = 64
_LATEST_LOCK = threading.Lock()


def _latest(held: Store) -> datetime | None:
    """The latest ``occurred_at`` in the held snapshot (None: no events)."""
    key = (held.location.describe(), held.snapshot_id)
    with _LATEST_LOCK:
        if key in _LATEST:
            return _LATEST[key]

    def scanned() -> str | None:
        with held.session() as q:
            found = q.rows("future_events", {"now": datetime.min.replace(tzinfo=UTC), "until": None})[0]["latest"]
        return found.isoformat() if isinstance(found, datetime) else None

    # kept with the store's pin too: a one-off command (``lineage access``) skips a scan of every event
    kept = held.kept(f"latest_event:{held.snapshot_id}", scanned, _zoned)
    latest = None if kept is None else datetime.fromisoformat(kept)
    with _LATEST_LOCK:
        if len(_LATEST) >= _LATEST_KEPT:
            _LATEST.pop(next(iter(_LATEST)))
        _LATEST[key] = latest
    return latest


def _zoned(text: str) -> bool:
    """Whether ``text`` is an ISO 8601 time with an offset (a kept latest event time as ``_latest`` writes it)."""
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False


def future_events(held: Store, now: datetime, option: str, *, window_end: datetime | None = None) -> str | None:
    """A warning if the store holds events stamped after ``now``, the wall clock an answer was judged at.

    Without ``window_end`` (an answer "as of now"): such events are left out of it (a service with a
    fast clock, a time zone mistake, a replay of future-dated test data), so the analyst must hear of
    them with the ``option`` that takes them in. With it (an explicit window, as breach reads): the
    ones inside the window are counted, as the window asks, and the analyst must hear the answer
    rests on events dated in the future. Counts and a time only: no event's content.
    """
    latest_stored = _latest(held)
    if latest_stored is None or latest_stored <= now:  # the common case, without a query per answer
        return None
    with held.session() as q:
        row: Mapping[str, Any] = q.rows("future_events", {"now": now, "until": window_end})[0]
    if not row["n"]:
        return None
    latest = row["latest"]
    latest_text = latest.isoformat() if isinstance(latest, datetime) else str(latest)
    where = "inside the window" if window_end is not None else "in the store"
    found = (
        f"{row['n']} event(s) {where} are stamped after now ({now.isoformat(timespec='seconds')}), "
        f"the latest at {latest_text}"
    )
    if window_end is not None:
        return f"{found}; they are counted, as the window asks ({option} only sets when deadlines start)"
    return f"{found}; they are left out: give {option} to include them"
