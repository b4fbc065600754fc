"""Breach impact: whose data a compromised holder had in a window, and what to notify."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypedDict, cast

from lineage.answers._common import check_time, now
from lineage.answers.rows import BreachRecord, CategoryImpact
from lineage.contract.law import INDICATIVE, Notification, RegimeExposure, notification_plan
from lineage.contract.rules import MINOR_BANDS, sensitivity
from lineage.contract.taxonomy import Taxonomy, suggest
from lineage.errors import InvalidEventError, UnknownValueError
from lineage.process import paused_gc
from lineage.store import Store

__all__ = ["AffectedPair", "BreachReport", "ExposedCopy", "breach_impact"]

# longer than any notification deadline in ``contract.law`` (the longest is 30 days)
_LONGEST_DEADLINE = timedelta(days=366)


class ExposedCopy(TypedDict):
    """One holder's copy of an affected pair: since when it had it, and whether encrypted there."""

    holder: str
    reached_at: datetime
    encrypted: bool


class AffectedPair(TypedDict):
    """One (subject, category) the breach exposed, with every compromised holder that had it."""

    subject: str
    category: str
    jurisdiction: str | None
    age_band: str
    encrypted: bool  # true only if every copy was encrypted
    holders: list[ExposedCopy]


@dataclass(frozen=True, slots=True)
class BreachReport:
    """Whose data a breach of ``nodes`` between ``t1`` and ``t2`` exposed, and what to notify."""

    nodes: list[str]
    t1: datetime
    t2: datetime
    aware_at: datetime
    records: list[BreachRecord]  # per (subject, category, holder): the --subjects-out rows
    affected: list[AffectedPair]  # per (subject, category): what the counts count
    subjects: int
    by_category: list[CategoryImpact]
    by_jurisdiction: dict[str, int]
    minors: int
    unencrypted_records: int
    notifications: list[Notification] = field(default_factory=list)
    note: str = INDICATIVE


def breach_impact(
    store: Store,
    nodes: list[str],
    t1: datetime,
    t2: datetime,
    taxonomy: Taxonomy,
    aware_at: datetime | None = None,
) -> BreachReport:
    """The affected (subject, category) pairs and an indicative notification plan per regime."""
    if not nodes:
        raise InvalidEventError("node", nodes, "name at least one compromised holder")
    for name, value in (("from", t1), ("to", t2)):
        check_time(name, value)
    if t1 > t2:
        raise InvalidEventError("from", t1.isoformat(), f"is after --to {t2.isoformat()}")
    with store.session() as q:
        records = cast(list[BreachRecord], q.rows("breach_impact", {"nodes": nodes, "t1": t1, "t2": t2}))
        # a node with data in the answer is a holder; only the others are looked up (every holder the
        # store names is a scan of all events: 0.4-0.8 s at 1M subjects, most of a large breach's wait)
        hit = {r["holder"] for r in records}
        if any(node not in hit for node in nodes):
            known = [r["name"] for r in q.rows("holders")]
            for node in nodes:
                if node not in known:
                    raise UnknownValueError("node", node, "holder", suggest(node, known))
    aware_at = aware_at or now()
    check_time("aware", aware_at)
    try:  # every deadline counts from it; one past the year 9999 has no date
        aware_at + _LONGEST_DEADLINE
    except OverflowError:
        raise InvalidEventError("aware", aware_at.isoformat(), "is too late to count deadlines from") from None
    with paused_gc():  # hundreds of thousands of rows: collections only slow the building
        return _report(nodes, t1, t2, aware_at, records, taxonomy)


def _report(
    nodes: list[str], t1: datetime, t2: datetime, aware_at: datetime, records: list[BreachRecord], taxonomy: Taxonomy
) -> BreachReport:
    affected = _pairs(records)
    subjects = {r["subject"] for r in records}
    # a record is a (subject, category) pair: the same data at two compromised holders is one
    # person's data exposed once, not twice
    by_category: Counter[str] = Counter(p["category"] for p in affected)
    by_category_subjects: dict[str, set[str]] = {}
    for r in records:
        by_category_subjects.setdefault(r["category"], set()).add(r["subject"])
    jurisdiction_of = {r["subject"]: r["jurisdiction"] or "unknown" for r in records}
    minors = {r["subject"] for r in records if r["age_band"] in MINOR_BANDS}
    categories = [
        CategoryImpact(category=c, records=n, subjects=len(by_category_subjects[c]),
                       **sensitivity(taxonomy.categories.get(c)))
        for c, n in sorted(by_category.items())
    ]  # fmt: skip
    report = BreachReport(
        nodes=nodes,
        t1=t1,
        t2=t2,
        aware_at=aware_at,
        records=records,
        affected=affected,
        subjects=len(subjects),
        by_category=categories,
        by_jurisdiction=dict(sorted(Counter(jurisdiction_of.values()).items())),
        minors=len(minors),
        unencrypted_records=sum(1 for p in affected if not p["encrypted"]),
    )
    try:
        report.notifications.extend(notification_plan(_exposure(records, categories, taxonomy), aware_at))
    except OverflowError:  # a deadline past the year 9999: no calendar can hold it
        raise InvalidEventError("aware", aware_at.isoformat(), "is too late to count deadlines from") from None
    return report


def _pairs(records: list[BreachRecord]) -> list[AffectedPair]:
    """The records grouped by (subject, category), the holders nested, in the query's order."""
    pairs: dict[tuple[str, str], AffectedPair] = {}
    for r in records:
        pair = pairs.get((r["subject"], r["category"]))
        if pair is None:
            pair = pairs[(r["subject"], r["category"])] = AffectedPair(
                subject=r["subject"], category=r["category"], jurisdiction=r["jurisdiction"],
                age_band=r["age_band"], encrypted=True, holders=[],
            )  # fmt: skip
        pair["holders"].append(ExposedCopy(holder=r["holder"], reached_at=r["reached_at"], encrypted=r["encrypted"]))
        pair["encrypted"] = pair["encrypted"] and bool(r["encrypted"])
    return list(pairs.values())


def _exposure(records: list[BreachRecord], categories: list[CategoryImpact], taxonomy: Taxonomy) -> RegimeExposure:
    """Count the affected subjects the way the notification rules ask: by residence and by data exposed."""
    regimes_of: dict[str, set[str]] = {}
    for r in records:
        region = taxonomy.regions.get(r["jurisdiction"] or "")
        for regime in region.regimes if region else ():
            regimes_of.setdefault(regime, set()).add(r["subject"])
    ca_elements = {
        r["subject"] for r in records
        if r["jurisdiction"] == "US-CA" and not r["encrypted"]
        and (cat := taxonomy.categories.get(r["category"])) is not None and cat.ca_breach_element
    }  # fmt: skip
    return RegimeExposure(
        subjects_by_regime={k: len(v) for k, v in regimes_of.items()},
        sensitive_exposed=any(c["pipl_sensitive"] or c["gdpr_special"] or c["cpra_sensitive"] for c in categories),
        california_elements=len(ca_elements),
    )
