"""One function per answer: hold one read of the store, ask the answer, return its stamped document.

The doors (``lineage.cli.answers``, the console's service, the demo) call these and nothing below
them, so a fact added here reaches every door, and a rule at the edge (which warnings, which stamp)
has this one home. Each function holds its own read (``read.hold``), so its queries and its stamp
agree even while consumers commit; several answers given as one (the registers) share a held store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lineage.answers import BreachReport, access_request, breach_impact, erasure_plan, now, person_answers
from lineage.answers import retention_register as _retention_rows
from lineage.answers import transfers_register as _transfer_rows
from lineage.answers.forget import erased, erasure_note
from lineage.answers.policy_check import check as _violations
from lineage.answers.ropa import ropa as _ropa
from lineage.contract.policy import Policy
from lineage.contract.taxonomy import Taxonomy
from lineage.errors import ConfigurationError
from lineage.present.formats import Document
from lineage.present.reports import (
    access_document,
    breach_document,
    check_document,
    links_fact,
    ropa_document,
    transfers_document,
)
from lineage.service.read import Stamp, future_events, hold, stamp_of, stamped
from lineage.store import Store

if TYPE_CHECKING:
    from lineage.present.datamap import DataMap

__all__ = [
    "Digest",
    "Graph",
    "Map",
    "access",
    "breach",
    "check",
    "data_map",
    "erasure",
    "graph",
    "person",
    "retention",
    "ropa",
    "transfers",
]

#: a person's identifier -> the keyed hash their erasure certificate is filed under (``lineage forget``)
Digest = Callable[[str], str]


def access(
    store: Store,
    identifier: str,
    taxonomy: Taxonomy,
    as_of: datetime | None = None,
    *,
    links_as_known_then: bool = False,
    digest: Digest | None = None,
    option: str = "as_of",
) -> Document:
    """A person's access report; only a certificate's date and case when they were forgotten (with ``digest``).

    ``option`` names, in the warning about events stamped after now, the door's way to give ``as_of``.
    """
    held = hold(store)
    if (gone := _forgotten(held, identifier, digest)) is not None:
        return gone
    report = access_request(held, identifier, taxonomy, as_of, links_as_known_then=links_as_known_then)
    title, facts, tables = access_document(report)
    # machines read "nothing held" from the document itself, never from a sentence instead of it
    doc = (title, {"holds_data": report.holds_data, **facts}, tables)
    return stamped(doc, _judged(held, report.as_of, given=as_of, option=option, links=report.links))


def erasure(
    store: Store,
    identifier: str,
    taxonomy: Taxonomy,
    as_of: datetime | None = None,
    *,
    links_as_known_then: bool = False,
    option: str = "as_of",
) -> Document:
    """A person's erasure plan: every holder, what each must do, and where it stands."""
    held = hold(store)
    plan = erasure_plan(held, identifier, taxonomy, as_of, links_as_known_then=links_as_known_then)
    facts = {"identifier": plan.identifier, "as_of": plan.as_of, "identifier_links": links_fact(plan.links),
             "holds_data": bool(plan.holders), "complete": plan.complete, "rule": plan.rule}  # fmt: skip
    doc = (f"Erasure plan: {plan.identifier}", facts, {"holders": plan.holders})
    return stamped(doc, _judged(held, plan.as_of, given=as_of, option=option, links=plan.links))


def person(
    store: Store,
    identifier: str,
    taxonomy: Taxonomy,
    as_of: datetime | None = None,
    *,
    digest: Digest | None = None,
    option: str = "as_of",
) -> Document:
    """The access report and the erasure plan of one person as one document, from one read (the console's)."""
    held = hold(store)
    if (gone := _forgotten(held, identifier, digest)) is not None:
        return gone
    report, plan = person_answers(held, identifier, taxonomy, as_of)
    title, facts, tables = access_document(report)
    facts = {"holds_data": report.holds_data, **facts, "erasure_complete": plan.complete,
             "erasure_rule": plan.rule, "erasure_links": links_fact(plan.links)}  # fmt: skip
    doc = (title, facts, {**tables, "erasure_plan": plan.holders})
    return stamped(doc, _judged(held, report.as_of, given=as_of, option=option, links=report.links))


def _forgotten(held: Store, identifier: str, digest: Digest | None) -> Document | None:
    """A forgotten person's document: the certificate's date and case, and nothing more; None if not forgotten."""
    if digest is None or (cert := erased(held, identifier, digest)) is None:
        return None
    return stamped(("Access request", {"holds_data": False, "erased": erasure_note(cert)}, {}), stamp_of(held))


def _judged(held: Store, as_of: datetime, *, given: datetime | None, option: str, links: str | None = None) -> Stamp:
    """The stamp of an answer judged ``as_of``; when the wall clock chose it, warned of events stamped after it."""
    warning = None if given is not None else future_events(held, as_of, option)
    return stamp_of(held, as_of, links, (warning,))


def breach(
    store: Store,
    nodes: Sequence[str],
    t1: datetime,
    t2: datetime,
    taxonomy: Taxonomy,
    *,
    aware: datetime | None = None,
    affected: bool = False,
    option: str = "aware",
) -> tuple[Document, BreachReport]:
    """A breach's impact as a document (with the affected pairs when ``affected``), and the report for the lists.

    The window is explicit and counts every event in it, even one stamped after the wall clock
    (``aware`` only sets when deadlines start): the stamp says when the answer rests on such events.
    """
    held = hold(store)
    report = breach_impact(held, list(nodes), t1, t2, taxonomy, aware_at=aware)
    warning = future_events(held, now(), option, window_end=t2)
    return stamped(breach_document(report, affected=affected), stamp_of(held, warnings=(warning,))), report


def transfers(store: Store, taxonomy: Taxonomy, as_of: datetime | None = None, *, option: str = "as_of") -> Document:
    """The cross-border transfer register, flagged against the PIPL thresholds."""
    held = hold(store)
    judged = as_of or now()
    doc = transfers_document(_transfer_rows(held, taxonomy, judged))
    return stamped(doc, _judged(held, judged, given=as_of, option=option))


def retention(store: Store, at: datetime | None = None) -> Document:
    """Data held past its retention period, judged at ``at`` (default now)."""
    held = hold(store)
    judged = at or now()
    rows = _retention_rows(held, judged)
    return stamped(("Held past retention", {"overdue_holdings": len(rows)}, {"overdue": rows}), stamp_of(held, judged))


def ropa(store: Store, taxonomy: Taxonomy, as_of: datetime | None = None, *, option: str = "as_of") -> Document:
    """The record of processing activities from the observed flows, with PIPL impact-assessment flags."""
    held = hold(store)
    record = _ropa(held, taxonomy, as_of)
    return stamped(ropa_document(record), _judged(held, record.as_of, given=as_of, option=option))


def check(
    store: Store, policy: Policy, at: datetime | None = None, *, option: str = "policy", refuse_unseen: bool = True
) -> Document:
    """Every flow breaking ``policy``; a warning names its systems the store never saw (a typo?).

    A policy none of whose systems has an event gets no verdict: ``ConfigurationError`` naming
    ``option`` (the wrong store, or the wrong policy), never "no violations"; unless not
    ``refuse_unseen`` (a console lists every declared policy, some of other stores' organisations).
    """
    held = hold(store)
    known = {r["name"] for r in held.rows("holders")}
    unseen = [s for s in policy.systems if s not in known]
    if refuse_unseen and unseen == list(policy.systems):
        raise ConfigurationError(option, f"{policy.name}: none of its systems has events in this store")
    warning = f"system(s) {', '.join(unseen)} have no events in this store (a typo in the policy?)" if unseen else None
    found = _violations(held, policy, at)
    return stamped(check_document(policy.name, found), stamp_of(held, warnings=(warning,)))


@dataclass(frozen=True)
class Map:
    """The data map laid out, and the stamp of the read it was drawn from."""

    map: DataMap
    stamp: Stamp


def data_map(
    store: Store,
    taxonomy: Taxonomy,
    policies: Sequence[Policy] = (),
    at: datetime | None = None,
    *,
    title: str = "Personal data map",
) -> Map:
    """The data map, each declared policy's violations (retention judged ``at``) pinned to their flows."""
    from lineage.answers.mapdata import map_data  # the page's modules load only for the answer that draws it
    from lineage.present.datamap import build_map

    held = hold(store)
    found = {p.name: _violations(held, p, at) for p in policies}
    return Map(build_map(map_data(held, found), taxonomy, policies, title=title), stamp_of(held))


@dataclass(frozen=True)
class Graph:
    """The flow graph of holders and regions (networkx), and the stamp of the read it was built from."""

    graph: Any  # a networkx DiGraph (``FlowGraph.to_networkx``): networkx is named in its adapter alone
    stamp: Stamp


def graph(store: Store, taxonomy: Taxonomy) -> Graph:
    """The flow graph: one edge per pair of holders, aggregated."""
    from lineage.answers.graph import FlowGraph  # networkx loads only for the answer that draws a graph

    held = hold(store)
    return Graph(FlowGraph.from_rows(held.rows("flow_edges"), taxonomy).to_networkx(), stamp_of(held))
