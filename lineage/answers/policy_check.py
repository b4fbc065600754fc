"""The policy check: every event in the store that breaks a clause of a declared policy."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from lineage.contract.policy import CLAUSES, Policy, Violation
from lineage.contract.rules import MINOR_BANDS, covered
from lineage.store import Store

__all__ = ["check"]


def check(store: Store, policy: Policy, now: datetime | None = None) -> list[Violation]:
    """Every event that breaks a clause of ``policy``: grouped by clause, in event-time order within each."""
    now = now or datetime.now(UTC)
    out: list[Violation] = []
    with store.session() as q:
        flows = q.rows("policy_events", _event_params(policy))
        for e in flows:
            out.extend(_event_violations(e, policy))
        if policy.retention_days:
            keys = list(policy.retention_days)
            for r in q.rows("policy_retention", {"systems": list(policy.systems), "now": now, "keys": keys,
                                                  "days": [policy.retention_days[k] for k in keys]}):  # fmt: skip
                out.append(Violation("retention", r["via"],
                                     f"{r['category']} kept at {r['holder']} past {r['days']} days"))  # fmt: skip
        for r in q.rows("policy_consent", {"systems": list(policy.systems), "purposes": list(policy.consent_purposes)}):
            out.append(Violation("consent", r["event_id"], f"{r['purpose']} without a prior granted consent"))
    out.sort(key=lambda v: CLAUSES.index(v.clause))  # stable: time order holds within a clause
    return out


def _event_params(policy: Policy) -> dict[str, Any]:
    """Bind the per-event clauses for the SQL prefilter (``queries/policy_events.sql``)."""

    def listed(values: Iterable[str] | None) -> list[str] | None:
        return None if values is None else list(values)

    minimum = policy.minimum_age
    return {
        "systems": list(policy.systems),
        "storage": listed(policy.storage_regions),
        "transfer": listed(policy.transfer_regions),
        "recipients": listed(policy.recipients),
        "never_keys": sorted({k for keys, _ in policy.never_share for k in keys}),
        "never_roles": sorted({r for _, roles in policy.never_share for r in roles}),
        "bands": [b for b, limit in MINOR_BANDS.items() if minimum is not None and limit <= minimum],
    }


def _event_violations(e: dict[str, Any], policy: Policy) -> list[Violation]:
    found = []
    kind, eid = e["event_type"], e["event_id"]
    if kind == "COLLECTED" and policy.storage_regions is not None and e["holder_region"] not in policy.storage_regions:
        found.append(Violation("storage_region", eid, f"{e['holder_name']} keeps data in {e['holder_region']}"))
    if kind in ("SHARED", "TRANSFERRED") and e["recipient_name"] not in policy.systems:
        name, role = e["recipient_name"], e["recipient_role"]
        if policy.transfer_regions is not None and e["recipient_region"] not in policy.transfer_regions:
            found.append(Violation("transfer_region", eid, f"{name} is in {e['recipient_region']}"))
        if policy.recipients is not None and name not in policy.recipients:
            found.append(Violation("recipient", eid, f"{name} is not a listed recipient"))
        for categories, roles in policy.never_share:
            hit = [c for c in e["categories"] if covered(c, categories)]
            if role in roles and hit:
                found.append(Violation("never_share", eid, f"{', '.join(hit)} given to {name} ({role})"))
    # an event about a subject under the minimum age: CHILD_UNDER_14 is under 14, MINOR under 18
    # (so it breaks a minimum of 18 only; for 16 the band cannot tell, and nothing is reported)
    band_limit = MINOR_BANDS.get(e["age_band"])
    if policy.minimum_age is not None and band_limit is not None and band_limit <= policy.minimum_age:
        found.append(Violation("minimum_age", eid, f"data of a subject in age band {e['age_band']}"))
    return found
