"""The shapes the holdings engine reads and writes: events in, runs, flow events and links out.

Times are integers (microseconds since the epoch, UTC): the engine compares millions of them, and
the store converts at its edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "Changes",
    "Event",
    "FlowEvent",
    "FlowInfo",
    "Link",
    "Provenance",
    "Run",
    "event_from_record",
    "event_from_row",
]

Key = tuple[str, str]
"""(subject, category): what a holder holds."""


class Provenance(NamedTuple):
    """How data came to a holder: what the answers report of the event (or flow) that brought it."""

    via_type: str  # COLLECTED, SHARED or TRANSFERRED
    via_bulk: bool
    holder_role: str | None
    holder_region: str | None
    source: str  # where it came from: the sending holder, a named source, or 'direct'
    source_region: str | None
    purpose: str | None
    legal_basis: str | None
    mechanism: str | None
    retention_days: int | None
    encrypted: bool | None


@dataclass(slots=True)
class Run:
    """One holding: a (subject, category) at a holder from ``arrived`` until ``ended`` (None: still held).

    A subject-level event makes a run of one arrival. A bulk flow makes a run of consecutive events of
    one flow, ``first_seq`` to ``last_seq`` (None: every event of the flow since, the run is open), each
    of which carried the pair: a nightly re-export of what the holder already holds adds no row.
    All arrivals of a run end together, at the first erasure that covers them.
    """

    subject: str
    category: str
    holder: str
    arrived: int
    via: str  # the event that started it
    prov: Provenance
    flow: str | None = None
    first_seq: int | None = None
    last_seq: int | None = None
    ended: int | None = None
    ended_by: str | None = None

    @property
    def key(self) -> Key:
        """(subject, category)."""
        return (self.subject, self.category)


class FlowEvent(NamedTuple):
    """The ``seq``-th event of a bulk flow: when it was sent, its id, and when its selection was taken."""

    flow: str
    seq: int
    at: int
    event_id: str
    bulk_as_of: int


class FlowInfo(NamedTuple):
    """A bulk flow: its id, sender, recipient, the categories it selects, and the provenance it gives."""

    flow: str
    sender: str
    recipient: str
    categories: tuple[str, ...]
    prov: Provenance


@dataclass(frozen=True, slots=True)
class Changes:
    """Which rows of the engine's output changed: a store rewrites those alone, not everything.

    ``subjects``: the subjects whose runs changed (started, ended, split, closed, reopened or undone);
    ``flows``: a bulk flow gained or lost events; ``links``: an identifier link or person key changed.
    ``added``: the runs that started for subjects none of whose other runs changed (most subjects of a
    refresh): their stored rows stand and these are added to them, not all their runs made again.
    Every other subject of ``subjects`` is ``rewritten``: its rows are made anew.
    """

    subjects: frozenset[str]
    flows: bool
    links: bool
    added: tuple[Run, ...] = field(default=(), hash=False)  # runs are mutable: not hashed

    @property
    def rewritten(self) -> frozenset[str]:
        """The subjects whose rows are all made anew: those of ``subjects`` with a run changed, not only added."""
        return self.subjects.difference(run.subject for run in self.added)

    def __bool__(self) -> bool:
        """Whether anything changed."""
        return bool(self.subjects) or self.flows or self.links


class Link(NamedTuple):
    """Two identifiers of one person, first declared at ``at``."""

    a: str
    b: str
    at: int


class Event(NamedTuple):
    """The fields of a stored event the holdings depend on (a tuple: millions are made per rebuild)."""

    event_id: str
    event_type: str
    at: int
    scope: str
    subject_id: str | None
    linked: Sequence[str]
    categories: Sequence[str]
    holder: str
    holder_role: str | None
    holder_region: str | None
    recipient: str | None
    recipient_role: str | None
    recipient_region: str | None
    purpose: str | None
    legal_basis: str | None
    mechanism: str | None
    retention_days: int | None
    encrypted: bool | None
    source: str | None
    bulk_as_of: int | None
    erasure_outcome: str | None
    #: the event's own time when it is older than the retention cut-off and so reads as at it (``at``
    #: is then the cut-off: queries/holdings_events.sql); None otherwise
    clamped_from: int | None = None

    @property
    def phase(self) -> int:
        """Order within one instant: arrivals, then erasures, then bulk flows (which read both)."""
        if self.event_type == "ERASED":
            return 1
        if self.scope == "BULK":
            return 2
        return 0

    def sort_key(self) -> tuple[int, int, int, str]:
        """Event-time order, the order the holdings are computed in.

        Within an instant, a flow's events go by selection time: those selected at the instant itself
        come last, together (they carry the same pairs, whatever else arrives at that instant).
        """
        return (self.at, self.phase, self.bulk_as_of or 0, self.event_id)


def event_from_row(r: dict[str, Any]) -> Event:
    """An ``Event`` from a row of the events table read with integer times."""
    return Event(
        event_id=r["event_id"],
        event_type=r["event_type"],
        at=r["occurred_at"],
        scope=r["scope"],
        subject_id=r["subject_id"],
        linked=tuple(r["linked_subject_ids"] or ()),
        categories=tuple(r["categories"] or ()),
        holder=r["holder_name"],
        holder_role=r["holder_role"],
        holder_region=r["holder_region"],
        recipient=r["recipient_name"],
        recipient_role=r["recipient_role"],
        recipient_region=r["recipient_region"],
        purpose=r["purpose"],
        legal_basis=r["legal_basis"],
        mechanism=r["mechanism"],
        retention_days=r["retention_days"],
        encrypted=r["encrypted"],
        source=r["source"],
        bulk_as_of=r["bulk_as_of"],
        erasure_outcome=r["erasure_outcome"],
        clamped_from=r.get("clamped_from"),
    )


def event_from_record(r: dict[str, Any]) -> Event:
    """An ``Event`` from a contract record (nested parties, integer times)."""
    holder, recipient = r["holder"], r["recipient"] or {}
    parties = {f"holder_{k}": holder[k] for k in ("name", "role", "region")}
    parties.update({f"recipient_{k}": recipient.get(k) for k in ("name", "role", "region")})
    return event_from_row({**r, **parties})
