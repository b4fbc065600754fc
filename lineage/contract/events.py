"""The event model: frozen dataclasses whose fields match ``schemas/personal_data_event.v2.avsc``.

Closed sets fixed by law or by our own logic are enums here and in the schema. Open sets that users
extend (categories, purposes, roles, regions, mechanisms) are plain strings checked against the
taxonomy files, so adding a vendor role or a country needs no schema change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = [
    "AgeBand",
    "DeadLetter",
    "ConsentKind",
    "ConsentStatus",
    "ErasureOutcome",
    "EventType",
    "LegalBasis",
    "Party",
    "PersonalDataEvent",
    "Scope",
    "TransferKind",
]


class EventType(StrEnum):
    """What happened to the data."""

    COLLECTED = "COLLECTED"
    SHARED = "SHARED"
    TRANSFERRED = "TRANSFERRED"
    ERASED = "ERASED"
    CONSENT = "CONSENT"


class Scope(StrEnum):
    """One subject, or every subject a holder held in the categories (a bulk export)."""

    SUBJECT = "SUBJECT"
    BULK = "BULK"


class AgeBand(StrEnum):
    """The subject's age band; PIPL Art. 28/31 treat under-14s specially."""

    UNKNOWN = "UNKNOWN"
    CHILD_UNDER_14 = "CHILD_UNDER_14"
    MINOR = "MINOR"
    ADULT = "ADULT"


class LegalBasis(StrEnum):
    """GDPR Art. 6 and PIPL Art. 13 lawful bases."""

    CONSENT = "CONSENT"
    CONTRACT = "CONTRACT"
    LEGAL_OBLIGATION = "LEGAL_OBLIGATION"
    VITAL_INTERESTS = "VITAL_INTERESTS"
    PUBLIC_TASK = "PUBLIC_TASK"
    LEGITIMATE_INTERESTS = "LEGITIMATE_INTERESTS"
    PUBLIC_INTEREST_NEWS = "PUBLIC_INTEREST_NEWS"
    PUBLICLY_AVAILABLE = "PUBLICLY_AVAILABLE"
    HR_MANAGEMENT = "HR_MANAGEMENT"


class ConsentKind(StrEnum):
    """General consent, separate consent (PIPL Art. 29, 39) or a guardian's (PIPL Art. 31)."""

    GENERAL = "GENERAL"
    SEPARATE = "SEPARATE"
    GUARDIAN = "GUARDIAN"


class ConsentStatus(StrEnum):
    """A consent event grants or withdraws."""

    GRANTED = "GRANTED"
    WITHDRAWN = "WITHDRAWN"


class TransferKind(StrEnum):
    """A transfer leaves the zone, or moves data to another controller (merger, PIPL Art. 22)."""

    CROSS_BORDER = "CROSS_BORDER"
    CONTROLLER_CHANGE = "CONTROLLER_CHANGE"


class ErasureOutcome(StrEnum):
    """Erased, anonymised, or held because a legal retention duty forbids erasure (PIPL Art. 47)."""

    ERASED = "ERASED"
    ANONYMISED = "ANONYMISED"
    HOLD = "HOLD"


@dataclass(frozen=True, slots=True, kw_only=True)
class Party:
    """A holder or recipient of data: a system of ours or an outside party."""

    name: str
    role: str
    region: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonalDataEvent:
    """One event; see the schema's field docs for each field's meaning."""

    event_id: str
    event_type: EventType
    occurred_at: datetime
    system: str
    system_region: str
    scope: Scope
    subject_id: str | None = None
    linked_subject_ids: tuple[str, ...] = ()
    subject_jurisdiction: str | None = None
    age_band: AgeBand = AgeBand.UNKNOWN
    categories: tuple[str, ...]
    purpose: str | None = None
    legal_basis: LegalBasis | None = None
    consent_ref: str | None = None
    consent_kind: ConsentKind | None = None
    consent_status: ConsentStatus | None = None
    source: str | None = None
    holder: Party
    recipient: Party | None = None
    transfer_kind: TransferKind | None = None
    mechanism: str | None = None
    bulk_as_of: datetime | None = None
    retention_days: int | None = None
    encrypted: bool | None = None
    erasure_outcome: ErasureOutcome | None = None
    hold_reason: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that could not be stored, with why and where it came from."""

    source: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    reason: str
    field: str | None = None
