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

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lineage.contract.taxonomy import Taxonomy
from lineage.contract.tomlfile import kind, read_toml
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
    """Read a policy file and check it against the schema, then the taxonomy.

    Every failure is one ``ConfigurationError`` line naming the file and the key
    (``policy: p.toml: organisation.systems: must be a list of strings, got a string``): a string
    where a list belongs would otherwise be read as its characters, and an unknown key (a typo)
    would silently promise nothing.
    """
    where = path.name
    doc = read_toml(path, "policy")
    _Schema(where).document(doc)
    recipients = {r["name"]: r["role"] for r in doc["recipients"]} if "recipients" in doc else None
    policy = Policy(
        name=doc["organisation"]["name"],
        systems=tuple(doc["organisation"]["systems"]),
        storage_regions=tuple(doc["storage"]["regions"]) if "storage" in doc else None,
        transfer_regions=tuple(doc["transfers"]["regions"]) if "transfers" in doc else None,
        recipients=recipients,
        never_share=tuple((tuple(r["categories"]), tuple(r["roles"])) for r in doc.get("never_share", ())),
        retention_days=dict(doc.get("retention", {})),
        minimum_age=doc["age"]["minimum"] if "age" in doc else None,
        consent_purposes=tuple(doc.get("consent", {}).get("purposes", ())),
    )
    for region in (*(policy.storage_regions or ()), *(policy.transfer_regions or ())):
        taxonomy.region(f"{where}: region", region)
    for role in (*(policy.recipients or {}).values(), *(r for _, roles in policy.never_share for r in roles)):
        taxonomy.role(f"{where}: role", role)
    for key in (*policy.retention_days, *(c for cats, _ in policy.never_share for c in cats)):
        taxonomy.category(f"{where}: category", key)
    for purpose in policy.consent_purposes:
        taxonomy.purpose(f"{where}: purpose", purpose)
    return policy


_MAX_DAYS = 2**31 - 1  # what an event's retention_days can hold
_MAX_AGE = 150


class _Schema:
    """The policy file's schema: each table's keys and their types; a failure names file and key."""

    # table -> its keys (True: required); the array tables list the keys of each entry
    TABLES: dict[str, dict[str, bool]] = {
        "organisation": {"name": True, "systems": True},
        "storage": {"regions": True},
        "transfers": {"regions": True},
        "recipients": {"name": True, "role": True},
        "never_share": {"categories": True, "roles": True},
        "retention": {},  # category key -> days: any key, checked against the taxonomy
        "age": {"minimum": True},
        "consent": {"purposes": False},
    }
    ARRAYS = frozenset({"recipients", "never_share"})

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, problem: str) -> ConfigurationError:
        return ConfigurationError("policy", f"{self.where}: {key}: {problem}")

    def document(self, doc: dict[str, Any]) -> None:
        self.known(doc, self.TABLES, "")
        if "organisation" not in doc:
            raise self.fail("organisation", "is missing: every policy names its organisation and systems")
        for name, value in doc.items():
            if name in self.ARRAYS:
                if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                    raise self.fail(name, f"must be an array of tables ([[{name}]]), got {kind(value)}")
                for n, entry in enumerate(value, start=1):
                    self.table(f"{name}[{n}]", entry, self.TABLES[name])
            else:
                if not isinstance(value, dict):
                    raise self.fail(name, f"must be a table ([{name}]), got {kind(value)}")
                self.table(name, value, self.TABLES[name])

    def known(self, table: dict[str, Any], keys: dict[str, Any], prefix: str) -> None:
        for key in table:
            if key not in keys:
                # a shortening ("org") or a misspelling ("regoins") of a real key
                close = [k for k in keys if len(key) >= 3 and (k.startswith(key) or key.startswith(k))]
                close = close or difflib.get_close_matches(key, list(keys), n=2, cutoff=0.6)
                hint = "; did you mean " + " or ".join(repr(prefix + c) for c in close) + "?" if close else ""
                allowed = ", ".join(keys)
                raise self.fail(prefix + key, f"is not a policy key (expected {allowed}){hint}")

    def table(self, name: str, table: dict[str, Any], keys: dict[str, bool]) -> None:
        base = name.split("[")[0]
        if base == "retention":
            for key, days in table.items():
                self.whole(f"retention.{key!r}" if "." in key else f"retention.{key}", days, 0, _MAX_DAYS)
            return
        self.known(table, keys, name + ".")
        for key, required in keys.items():
            if required and key not in table:
                raise self.fail(f"{name}.{key}", "is missing")
        for key, value in table.items():
            full = f"{name}.{key}"
            if key in ("name", "role"):
                self.text(full, value)
            elif key == "minimum":
                self.whole(full, value, 0, _MAX_AGE)
            else:
                self.texts(full, value)
                if full == "organisation.systems" and not value:
                    # no system: every clause would hold vacuously, a policy that can never be broken
                    raise self.fail(full, "must name at least one of the organisation's systems")

    def text(self, key: str, value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {kind(value)}")

    def texts(self, key: str, value: object) -> None:
        if not isinstance(value, list):
            raise self.fail(key, f"must be a list of strings, got {kind(value)}")
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise self.fail(key, f"must be a list of non-empty strings; one item is {kind(item)}")

    def whole(self, key: str, value: object, low: int, high: int) -> None:
        # bool is an int in Python, and inf/nan are floats TOML allows: neither is a number of days
        if type(value) is not int:
            raise self.fail(key, f"must be a whole number from {low} to {high}, got {kind(value)}")
        if not low <= value <= high:
            raise self.fail(key, f"must be from {low} to {high}, got {value}")


# the clause kinds, in the order a policy file declares them and reports list them
CLAUSES = ("storage_region", "transfer_region", "recipient", "never_share", "retention", "minimum_age", "consent")
