"""The record of processing activities (GDPR Art. 30(1)), with the PIPL Art. 55 impact-assessment flags.

An activity is one controller (the holder that collects or sends the data: one of our systems, or
an outside party whose onward flows we observe) processing for one purpose: how a DPO keeps the
record, one entry per business process and purpose, and the unit an impact assessment is done for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lineage.answers._common import check_time
from lineage.answers._common import now as clock
from lineage.answers.rows import RopaActivity, RopaFlag
from lineage.contract.law import AUTOMATED_DECISION_PURPOSES, ENTRUSTED_ROLES, PIA_RULES, PIPL_ZONE
from lineage.contract.rules import MINOR_BANDS
from lineage.contract.taxonomy import Taxonomy
from lineage.store import Store

__all__ = ["EXAMPLES", "FLAGS", "Ropa", "ropa"]

# how many event ids each flag names, earliest first (the count says how many there are in all)
EXAMPLES = 10

# flag name -> the column prefix queries/ropa.sql gives it
FLAGS = {
    "sensitive data": "sensitive",
    "automated decision-making": "automated",
    "entrusted processing": "entrusted",
    "disclosure to other handlers": "disclosed",
    "transfer abroad": "abroad",
}


@dataclass(frozen=True, slots=True)
class Ropa:
    """The record as of ``as_of``: one row per activity, and one per impact-assessment flag of an activity."""

    as_of: datetime
    activities: list[RopaActivity]
    assessments: list[RopaFlag]


def ropa(store: Store, taxonomy: Taxonomy, as_of: datetime | None = None) -> Ropa:
    """The record of processing activities generated from the flows observed up to ``as_of`` (default now)."""
    as_of = as_of or clock()
    check_time("as_of", as_of)
    pipl_sensitive = taxonomy.pipl_sensitive_keys()
    external = sorted(k for k, r in taxonomy.roles.items() if r.external)
    params: dict[str, Any] = {
        "as_of": as_of,
        "sensitive": pipl_sensitive,
        "minor_bands": sorted(MINOR_BANDS),
        "child_bands": sorted(b for b, age in MINOR_BANDS.items() if age <= 14),
        "entrusted_roles": [r for r in external if r in ENTRUSTED_ROLES],
        "disclosure_roles": [r for r in external if r not in ENTRUSTED_ROLES],
        "pipl_zone": PIPL_ZONE,
        "adm_purposes": list(AUTOMATED_DECISION_PURPOSES),
        "examples": EXAMPLES,
    }
    activities: list[RopaActivity] = []
    assessments: list[RopaFlag] = []
    sensitive = set(pipl_sensitive)
    for row in store.rows("ropa", params, taxonomy):
        flags = [name for name, col in FLAGS.items() if row[f"{col}_events"]]
        activities.append(
            RopaActivity(
                controller=row["controller"],
                purpose=row["purpose"],
                controller_roles=row["controller_roles"],
                controller_regions=row["controller_regions"],
                legal_bases=row["legal_bases"],
                subjects=row["subjects"],
                minors=row["minors"],
                children_under_14=row["children_under_14"],
                subject_jurisdictions=row["subject_jurisdictions"],
                categories=row["categories"],
                sensitive_categories=[c for c in row["categories"] if c in sensitive],
                recipients=row["recipients"],
                recipient_roles=row["recipient_roles"],
                third_countries=row["third_countries"],
                transfer_mechanisms=row["transfer_mechanisms"],
                retention_days=row["retention_days"],
                events=row["events"],
                bulk_events=row["bulk_events"],
                first_seen=row["first_seen"],
                last_seen=row["last_seen"],
                impact_assessment=flags,
            )
        )
        for name in flags:
            col = FLAGS[name]
            assessments.append(
                RopaFlag(
                    controller=row["controller"],
                    purpose=row["purpose"],
                    flag=name,
                    rule=PIA_RULES[name],
                    events=row[f"{col}_events"],
                    flows=sorted(flow_label(f) for f in row[f"{col}_flows"]),
                    first_events=row[f"{col}_examples"] or [],
                )
            )
    return Ropa(as_of=as_of, activities=activities, assessments=assessments)


def flow_label(flow: dict[str, Any]) -> str:
    """A flow as a DPO reads it: ``app > pay-hk (processor, HK) under gba.standard_contract``."""
    where = ", ".join(x for x in (flow["role"], flow["region"]) if x)
    label = f"{flow['src']} > {flow['dst']}" + (f" ({where})" if where else "")
    if flow["mechanism"]:
        return f"{label} under {flow['mechanism']}"
    return f"{label} without a transfer mechanism" if flow["crossing"] else label
