"""The documents the answers print: a title, a few facts and named tables, for ``formats.render``.

Shared by the CLI commands and the demo, so the demo prints exactly what an analyst would see.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Mapping, Sequence

from lineage.answers import AccessReport, BreachReport
from lineage.answers.access import LINKS_AS_KNOWN_THEN, LINKS_KNOWN_NOW
from lineage.answers.ropa import Ropa
from lineage.answers.rows import RETENTION_NEVER, RETENTION_NEVER_TEXT, SourceRow, TransferRow
from lineage.contract.law import ACCESS_DEADLINES, INDICATIVE, PIPL_RULE, ROPA_RULE
from lineage.contract.policy import Violation
from lineage.present.formats import Document, csv_cell

__all__ = [
    "access_document",
    "affected_csv",
    "breach_document",
    "came_from",
    "check_document",
    "links_fact",
    "ropa_document",
    "transfers_document",
]

_LINKS_FACTS = {
    LINKS_KNOWN_NOW: "known now: every identifier link in the store, also links declared after as_of "
    "(a link holds for the whole history)",
    LINKS_AS_KNOWN_THEN: "as known then: only identifier links declared by as_of (an audit view)",
}


def links_fact(links: str) -> str:
    """Which identifier links an answer followed, said plainly for its facts."""
    return _LINKS_FACTS.get(links, links)


def access_document(report: AccessReport) -> Document:
    """A data subject's access report: what is held, why, from where, who received it, how long it is kept."""
    facts: dict[str, object] = {
        "identifier": report.identifier,
        "as_of": report.as_of,
        "identifiers": report.identifiers,
        "identifier_links": links_fact(report.links),
        "jurisdiction": report.jurisdiction,
        "age_band": report.age_band,
        "note": ACCESS_DEADLINES + INDICATIVE,
    }
    tables: dict[str, Sequence[Mapping[str, object]]] = {
        "data_held": [_plain_retention(h) for h in report.holdings],
        "recipients": report.recipients,
        "consent_history": report.consents,
        "erasures": report.erasures,
        "event_sources": [_came_from(r) for r in report.sources],
    }
    return f"Access request: {report.identifier}", facts, tables


def came_from(via: str | None, name: str | None, run: str | None) -> str:
    """How an event reached Kafka, said plainly: "SDK 1.2", "gateway (token X)", "OpenLineage job ns/name, run R"."""
    if via == "sdk":
        return f"SDK {name}" if name else "SDK"
    if via == "gateway":
        return f"gateway (token {name})" if name else "gateway"
    if via == "openlineage":
        job = f" job {name}" if name else ""
        return f"OpenLineage{job}, run {run}" if run else f"OpenLineage{job}"
    return "not recorded (sent without provenance headers)"


def _came_from(row: SourceRow) -> Mapping[str, object]:
    """One event of the person and how it reached Kafka: the door (``sent_via``) and the plain words."""
    return {"occurred_at": row["occurred_at"], "event_type": row["event_type"], "system": row["system"],
            "holder": row["holder"], "sent_via": row["sent_via"],
            "came_from": came_from(row["sent_via"], row["sent_via_name"], row["sent_via_run"])}  # fmt: skip


def _plain_retention(row: Mapping[str, object]) -> Mapping[str, object]:
    """A holding whose retention ends past any representable date says "never", not year 9999."""
    if row.get("retention_ends") == RETENTION_NEVER:
        return {**row, "retention_ends": RETENTION_NEVER_TEXT}
    return row


def affected_csv(report: BreachReport) -> str:
    """The affected list as CSV: one row per (subject, category, holder), spreadsheet-safe (a list of people)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["subject", "jurisdiction", "age_band", "category", "holder", "reached_at", "encrypted"])
    for r in report.records:
        writer.writerow([csv_cell(r[k]) for k in ("subject", "jurisdiction", "age_band", "category", "holder",
                                                   "reached_at", "encrypted")])  # fmt: skip
    return out.getvalue()


def breach_document(report: BreachReport, *, affected: bool = False) -> Document:
    """A breach's impact: subjects, categories, jurisdictions and the indicative notification plan.

    ``records`` counts (subject, category) pairs. With ``affected`` (the JSON output), the pairs
    themselves too, each with the compromised holders that had it: a list of people, so the
    Markdown summary leaves it out (``--subjects-out`` writes it to a private file).
    """
    facts: dict[str, object] = {
        "compromised": report.nodes,
        "window": f"{report.t1.isoformat()} to {report.t2.isoformat()}",
        "aware_at": report.aware_at,
        "subjects": report.subjects,
        "records": len(report.affected),
        "minors": report.minors,
        "unencrypted_records": report.unencrypted_records,
        "note": report.note,
    }
    tables: dict[str, Sequence[Mapping[str, object]]] = {
        "by_category": report.by_category,
        "by_jurisdiction": [{"jurisdiction": k, "subjects": v} for k, v in report.by_jurisdiction.items()],
        "notification_plan": [dataclasses.asdict(n) for n in report.notifications],
    }
    if affected:
        tables["affected"] = report.affected
    return "Breach impact", facts, tables


def transfers_document(rows: Sequence[TransferRow]) -> Document:
    """The cross-border transfer register, flagged against the PIPL thresholds."""
    facts = {"rule": PIPL_RULE, "flagged": sum(1 for r in rows if r["flag"]), "note": INDICATIVE}
    return "Cross-border transfers", facts, {"transfers": rows}


def ropa_document(record: Ropa) -> Document:
    """The record of processing activities, and each activity's reasons for a PIPL impact assessment."""
    facts = {
        "as_of": record.as_of,
        "rule": ROPA_RULE,
        "activities": len(record.activities),
        "needing_assessment": sum(1 for a in record.activities if a["impact_assessment"]),
        "grouping": "one activity per controller (the holder collecting or sending) and purpose",
        "note": "Generated from observed flows: subjects, minors and jurisdictions come from subject-level "
        "events (a bulk flow names no subject); controller contacts, DPO and security measures are not in "
        "the events and must be added by hand. " + INDICATIVE,
    }
    return "Record of processing activities", facts, {"activities": record.activities,
                                                       "impact_assessments": record.assessments}  # fmt: skip


def check_document(policy_name: str, found: Sequence[Violation]) -> Document:
    """Every violation of one policy, with the clause broken and the event that shows it."""
    facts = {"policy": policy_name, "violations": len(found)}
    return f"Policy check: {policy_name}", facts, {"violations": [dataclasses.asdict(v) for v in found]}
