"""Declared privacy policies as files, and the check of what services did against them.

A policy is a TOML file a privacy analyst writes (``policies/*.toml`` has one per seed organisation)::

    [organisation]
    name = "MoChat"
    systems = ["mochat-app", "mochat-im"]          # our own systems

    [storage]
    regions = ["HK"]                                # where our systems may keep personal data

    [transfers]
    regions = ["HK", "CN"]                          # where recipients may be

    [[recipients]]                                  # the only parties data may go to
    name = "crash-sdk"
    role = "processor"

    [[never_share]]                                 # categories never given to these roles
    categories = ["user.government_id", "user.contact.phone_number"]
    roles = ["third_party", "processor"]

    [retention]                                     # days, per category key (covers sub-keys)
    "user.behavior.access_log" = 180

    [age]
    minimum = 14                                    # no data from children under 14

    [consent]
    purposes = ["marketing.communications.email"]   # need a prior GRANTED consent

``check`` reports every event that breaks a clause, naming the clause and the event.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lineage.errors import ConfigurationError
from lineage.store import Store
from lineage.taxonomy import Taxonomy

__all__ = ["CLAUSES", "Policy", "Violation", "check", "load_policy", "policy_dir"]


def policy_dir() -> Path:
    """The seed organisations' policy files: packaged beside the code, or ``policies/`` in a checkout."""
    packaged = Path(__file__).parent / "policies"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "policies"


@dataclass(frozen=True, slots=True)
class Policy:
    """What an organisation promised, as ``check`` reads it."""

    name: str
    systems: tuple[str, ...]
    storage_regions: tuple[str, ...] | None = None
    transfer_regions: tuple[str, ...] | None = None
    recipients: dict[str, str] | None = None  # name -> role
    never_share: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()  # (categories, roles)
    retention_days: dict[str, int] = field(default_factory=dict)
    minimum_age: int | None = None
    consent_purposes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Violation:
    """One event that breaks one clause."""

    clause: str
    event_id: str
    detail: str


def load_policy(path: Path, taxonomy: Taxonomy) -> Policy:
    """Read and check a policy file; errors name the file and the entry."""
    where = path.name
    try:
        doc: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError("policy", f"{where}: {exc}") from exc
    try:
        org = doc["organisation"]
        recipients = {r["name"]: r["role"] for r in doc.get("recipients", ())} if "recipients" in doc else None
        policy = Policy(
            name=str(org["name"]),
            systems=tuple(org["systems"]),
            storage_regions=tuple(doc["storage"]["regions"]) if "storage" in doc else None,
            transfer_regions=tuple(doc["transfers"]["regions"]) if "transfers" in doc else None,
            recipients=recipients,
            never_share=tuple((tuple(r["categories"]), tuple(r["roles"])) for r in doc.get("never_share", ())),
            retention_days={str(k): int(v) for k, v in doc.get("retention", {}).items()},
            minimum_age=int(doc["age"]["minimum"]) if "age" in doc else None,
            consent_purposes=tuple(doc.get("consent", {}).get("purposes", ())),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError("policy", f"{where}: missing or malformed entry {exc}") from exc
    for region in (*(policy.storage_regions or ()), *(policy.transfer_regions or ())):
        taxonomy.region(f"{where}: region", region)
    for role in (*(policy.recipients or {}).values(), *(r for _, roles in policy.never_share for r in roles)):
        taxonomy.role(f"{where}: role", role)
    for key in (*policy.retention_days, *(c for cats, _ in policy.never_share for c in cats)):
        taxonomy.category(f"{where}: category", key)
    for purpose in policy.consent_purposes:
        taxonomy.purpose(f"{where}: purpose", purpose)
    return policy


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


_MINORS = {"CHILD_UNDER_14": 14, "MINOR": 18}
# the clause kinds, in the order a policy file declares them and reports list them
CLAUSES = ("storage_region", "transfer_region", "recipient", "never_share", "retention", "minimum_age", "consent")


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
        "bands": [b for b, limit in _MINORS.items() if minimum is not None and limit <= minimum],
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
            hit = [c for c in e["categories"] if any(c == k or c.startswith(k + ".") for k in categories)]
            if role in roles and hit:
                found.append(Violation("never_share", eid, f"{', '.join(hit)} given to {name} ({role})"))
    # an event about a subject under the minimum age: CHILD_UNDER_14 is under 14, MINOR under 18
    # (so it breaks a minimum of 18 only; for 16 the band cannot tell, and nothing is reported)
    band_limit = _MINORS.get(e["age_band"])
    if policy.minimum_age is not None and band_limit is not None and band_limit <= policy.minimum_age:
        found.append(Violation("minimum_age", eid, f"data of a subject in age band {e['age_band']}"))
    return found
