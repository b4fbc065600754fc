"""A person's access request (GDPR Art. 15, PIPL Art. 45, CCPA 1798.110) and their erasure plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from lineage.answers import person as grouped
from lineage.answers._common import check_identifier, check_time, linked_identifiers, now
from lineage.answers.rows import ConsentRow, ErasureHolder, ErasureRow, HoldingRow, RecipientRow, SourceRow
from lineage.contract.law import ERASURE_RULE, recipient_erasure_action
from lineage.contract.rules import crosses_border, sensitivity
from lineage.contract.taxonomy import Taxonomy
from lineage.store import Session, Store

__all__ = [
    "LINKS_AS_KNOWN_THEN", "LINKS_KNOWN_NOW", "AccessReport", "ErasurePlan", "access_request", "erasure_plan",
    "person_answers",
]  # fmt: skip

#: Which identifier links an answer followed (``AccessReport.links``, ``ErasurePlan.links``).
#: Known now (the default): every link in the store, also one declared after ``as_of``; a link is a
#: fact about who the identifiers belonged to all along (valid time). As known then: only links
#: declared by events up to ``as_of`` (knowledge time), for audits of what was known at the time.
LINKS_KNOWN_NOW = "known now"
LINKS_AS_KNOWN_THEN = "as known then"

#: a person's holdings (one row per arrival) and own events, in time order, as of a time
_Person = tuple[list[dict[str, Any]], list[dict[str, Any]]]
#: what an access report's ``sources`` give of each event (the holder: the recipient, if any)
_SOURCE = ("occurred_at", "event_id", "event_type", "system", "sent_via", "sent_via_name", "sent_via_run")


@dataclass(frozen=True, slots=True)
class AccessReport:
    """What is held about one subject, as of a time."""

    identifier: str
    as_of: datetime
    identifiers: list[str]
    jurisdiction: str | None
    age_band: str
    holdings: list[HoldingRow]
    recipients: list[RecipientRow]
    consents: list[ConsentRow]
    erasures: list[ErasureRow]
    links: str = LINKS_KNOWN_NOW
    sources: list[SourceRow] = field(default_factory=list)  # how each of the subject's events reached Kafka

    @property
    def holds_data(self) -> bool:
        """Whether anything about the subject was ever recorded."""
        return bool(self.holdings or self.consents or self.erasures)


def access_request(
    store: Store,
    identifier: str,
    taxonomy: Taxonomy,
    as_of: datetime | None = None,
    *,
    links_as_known_then: bool = False,
) -> AccessReport:
    """Everything held about the subject known by ``identifier`` (any of its linked identifiers).

    Links are those known now unless ``links_as_known_then`` (see ``LINKS_KNOWN_NOW``).
    """
    check_identifier(identifier)
    as_of = as_of or now()
    check_time("as_of", as_of)
    with store.session() as q:
        ids = linked_identifiers(q, identifier, as_of if links_as_known_then else None)
        return _access(q, identifier, ids, taxonomy, as_of, links_as_known_then)


def _access(
    q: Session,
    identifier: str,
    ids: list[str],
    taxonomy: Taxonomy,
    as_of: datetime,
    links_as_known_then: bool,
    person: _Person | None = None,
) -> AccessReport:
    """The report; ``person``: the person's rows as of ``as_of``, when already read (``_read_person``)."""
    rows, events = person or _read_person(q, ids, as_of)
    own = {e["event_id"] for e in events}
    vias = sorted({r["via"] for r in rows} - own)  # the bulk events that brought the person's data
    bulk = q.lookup("access_sources", {"as_of": as_of, "vias": vias, "files": q.bulk_event_files()}) if vias else []
    sources = sorted(
        [*bulk, *({**_pick(e, *_SOURCE), "holder": _coalesce(e["recipient_name"], e["holder"])} for e in events)],
        key=lambda s: (s["occurred_at"], s["event_id"]),
    )
    jurisdiction = next((e["subject_jurisdiction"] for e in reversed(events) if e["subject_jurisdiction"]), None)
    age_band = next((e["age_band"] for e in reversed(events) if e["age_band"] != "UNKNOWN"), "UNKNOWN")
    return AccessReport(
        identifier=identifier,
        as_of=as_of,
        identifiers=ids,
        jurisdiction=jurisdiction,
        age_band=age_band,
        holdings=[
            cast(HoldingRow, {**r, "sensitive": sensitivity(taxonomy.categories.get(r["category"]))})
            for r in grouped.holdings(rows)
        ],
        recipients=[
            cast(RecipientRow, {**r, "cross_border": _crosses(taxonomy, r)})
            for r in grouped.recipients(rows)
        ],
        consents=[cast(ConsentRow, _pick(e, "occurred_at", "consent_status", "consent_kind", "consent_ref",
                                          "purpose", "categories"))
                  for e in events if e["event_type"] == "CONSENT"],
        erasures=[cast(ErasureRow, _pick(e, "occurred_at", "holder", "erasure_outcome", "hold_reason", "categories"))
                  for e in events if e["event_type"] == "ERASED"],
        links=LINKS_AS_KNOWN_THEN if links_as_known_then else LINKS_KNOWN_NOW,
        sources=cast(list[SourceRow], sources),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ErasurePlan:
    """Every holder of a subject's data and where its erasure stands."""

    identifier: str
    as_of: datetime
    holders: list[ErasureHolder]
    rule: str = ERASURE_RULE
    links: str = LINKS_KNOWN_NOW

    @property
    def complete(self) -> bool:
        """Whether every holder has erased (a hold or a pending holder keeps it open)."""
        return all(h["status"] == "done" for h in self.holders)


def erasure_plan(
    store: Store,
    identifier: str,
    taxonomy: Taxonomy,
    as_of: datetime | None = None,
    *,
    links_as_known_then: bool = False,
) -> ErasurePlan:
    """Who must erase or be told to, and their status from erasure events (links as in ``access_request``)."""
    check_identifier(identifier)
    as_of = as_of or now()
    check_time("as_of", as_of)
    with store.session() as q:
        ids = linked_identifiers(q, identifier, as_of if links_as_known_then else None)
        return _erasure(q, identifier, ids, taxonomy, as_of, links_as_known_then)


def person_answers(
    store: Store, identifier: str, taxonomy: Taxonomy, as_of: datetime | None = None
) -> tuple[AccessReport, ErasurePlan]:
    """The access report and the erasure plan of one person (links known now), as the two functions give them.

    One session: the person's identifiers linked once, and their rows read once, for both (a person
    page asks for both).
    """
    check_identifier(identifier)
    as_of = as_of or now()
    check_time("as_of", as_of)
    with store.session() as q:
        ids = linked_identifiers(q, identifier)
        person = _read_person(q, ids, as_of)
        report = _access(q, identifier, ids, taxonomy, as_of, False, person)
        return report, _erasure(q, identifier, ids, taxonomy, as_of, False, person)


def _read_person(q: Session, ids: list[str], as_of: datetime) -> _Person:
    """The person's holdings and own events, which both answers read.

    Each query reads only the data files that may hold the person (their footers' bounds).
    """
    rows = q.subject_holdings(ids, as_of)
    params = {"ids": ids, "as_of": as_of, "files": q.event_files_of(ids)}
    return rows, grouped.first_copies(q.lookup("subject_events", params))


def _erasure(
    q: Session,
    identifier: str,
    ids: list[str],
    taxonomy: Taxonomy,
    as_of: datetime,
    links_as_known_then: bool,
    person: _Person | None = None,
) -> ErasurePlan:
    """The plan; ``person``: the person's rows as of ``as_of``, when already read (``_read_person``)."""
    rows, events = person or _read_person(q, ids, as_of)
    return ErasurePlan(
        identifier,
        as_of,
        [cast(ErasureHolder, {**h, "action": recipient_erasure_action(_external(taxonomy, h["role"]))})
         for h in grouped.holders(rows, events)],
        links=LINKS_AS_KNOWN_THEN if links_as_known_then else LINKS_KNOWN_NOW,
    )  # fmt: skip


def _crosses(taxonomy: Taxonomy, recipient: dict[str, Any]) -> bool:
    return crosses_border(taxonomy, recipient["sender_region"], recipient["recipient_region"])


def _external(taxonomy: Taxonomy, role: str | None) -> bool:
    found = taxonomy.roles.get(role or "")
    return bool(found and found.external)


def _coalesce(first: Any, then: Any) -> Any:
    return then if first is None else first


def _pick(row: dict[str, Any], *names: str) -> dict[str, Any]:
    return {n: row[n] for n in names}
