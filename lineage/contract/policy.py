"""Declared privacy policies as files: what an organisation promised (``answers.policy_check`` checks it).

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

``lineage.answers.policy_check.check`` reports every event that breaks a clause.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lineage.contract.taxonomy import Taxonomy
from lineage.errors import ConfigurationError
from lineage.resources import shipped_dir

__all__ = ["CLAUSES", "Policy", "Violation", "load_policy", "policy_dir"]


def policy_dir() -> Path:
    """The seed organisations' policy files."""
    return shipped_dir("policies")


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


# the clause kinds, in the order a policy file declares them and reports list them
CLAUSES = ("storage_region", "transfer_region", "recipient", "never_share", "retention", "minimum_age", "consent")
