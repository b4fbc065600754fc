"""The documents the answers print: a title, a few facts and named tables, for ``formats.render``.

Shared by the CLI commands and the demo, so the demo prints exactly what an analyst would see.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from lineage.answers import INDICATIVE, PIPL_RULE, AccessReport, BreachReport
from lineage.formats import Document
from lineage.policy import Violation

__all__ = ["access_document", "breach_document", "check_document", "transfers_document"]

_DEADLINES = (
    "Deadlines: GDPR 1 month (Art. 12(3)); PIPL timely (15 working days promised by the seed "
    "policies); CCPA 45 days; HK PDPO 40 days. "
)


def access_document(report: AccessReport) -> Document:
    """A data subject's access report: what is held, why, from where, who received it, how long it is kept."""
    facts = {
        "identifier": report.identifier,
        "as_of": report.as_of,
        "identifiers": report.identifiers,
        "jurisdiction": report.jurisdiction,
        "age_band": report.age_band,
        "note": _DEADLINES + INDICATIVE,
    }
    tables = {
        "data_held": report.holdings,
        "recipients": report.recipients,
        "consent_history": report.consents,
        "erasures": report.erasures,
    }
    return f"Access request: {report.identifier}", facts, tables


def breach_document(report: BreachReport) -> Document:
    """A breach's impact: subjects, categories, jurisdictions and the indicative notification plan."""
    facts = {
        "compromised": report.nodes,
        "window": f"{report.t1.isoformat()} to {report.t2.isoformat()}",
        "subjects": report.subjects,
        "records": len(report.records),
        "minors": report.minors,
        "unencrypted_records": report.unencrypted_records,
        "note": report.note,
    }
    tables = {
        "by_category": report.by_category,
        "by_jurisdiction": [{"jurisdiction": k, "subjects": v} for k, v in report.by_jurisdiction.items()],
        "notification_plan": [dataclasses.asdict(n) for n in report.notifications],
    }
    return "Breach impact", facts, tables


def transfers_document(rows: Sequence[dict[str, Any]]) -> Document:
    """The cross-border transfer register, flagged against the PIPL thresholds."""
    facts = {"rule": PIPL_RULE, "flagged": sum(1 for r in rows if r["flag"]), "note": INDICATIVE}
    return "Cross-border transfers", facts, {"transfers": rows}


def check_document(policy_name: str, found: Sequence[Violation]) -> Document:
    """Every violation of one policy, with the clause broken and the event that shows it."""
    facts = {"policy": policy_name, "violations": len(found)}
    return f"Policy check: {policy_name}", facts, {"violations": [dataclasses.asdict(v) for v in found]}
