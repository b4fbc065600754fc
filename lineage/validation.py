"""The contract's rules beyond types: what each event type needs, checked against the taxonomy.

The emitter runs these before sending and the consumer runs them again on arrival, so a service that
bypasses the SDK still cannot put an invalid event into the store (it goes to the dead-letter topic).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from lineage.errors import InvalidEventError
from lineage.events import EventType, PersonalDataEvent, Scope, TransferKind
from lineage.taxonomy import Taxonomy

__all__ = ["is_cross_border", "validate"]

_NEEDS_PURPOSE = frozenset({EventType.COLLECTED, EventType.SHARED, EventType.TRANSFERRED, EventType.CONSENT})
_NEEDS_RECIPIENT = frozenset({EventType.SHARED, EventType.TRANSFERRED})
_MAX_ID = 512


def validate(event: PersonalDataEvent, taxonomy: Taxonomy) -> None:
    """Raise ``InvalidEventError`` naming the first field that breaks the contract."""
    _check_id("event_id", event.event_id)
    try:
        uuid.UUID(event.event_id)
    except ValueError:
        raise InvalidEventError("event_id", event.event_id, "must be a UUID") from None
    _check_time("occurred_at", event.occurred_at)
    _check_id("system", event.system)
    taxonomy.region("system_region", event.system_region)
    _check_subject(event, taxonomy)
    _check_categories(event, taxonomy)
    kind = event.event_type
    if kind in _NEEDS_PURPOSE and event.purpose is None:
        raise InvalidEventError("purpose", None, f"a {kind.value} event needs a purpose")
    if event.purpose is not None:
        taxonomy.purpose("purpose", event.purpose)
    if kind is EventType.COLLECTED and event.legal_basis is None:
        raise InvalidEventError("legal_basis", None, "a COLLECTED event needs a legal basis")
    _check_party("holder", event.holder.name, event.holder.role, event.holder.region, taxonomy)
    if event.retention_days is not None and event.retention_days < 0:
        raise InvalidEventError("retention_days", event.retention_days, "must be 0 or more")
    if kind in _NEEDS_RECIPIENT:
        _check_flow(event, taxonomy)
    elif event.recipient is not None:
        raise InvalidEventError("recipient", event.recipient.name, f"a {kind.value} event has no recipient")
    if kind is EventType.ERASED:
        _check_erasure(event)
    if kind is EventType.CONSENT:
        _check_consent(event)


def is_cross_border(event: PersonalDataEvent, taxonomy: Taxonomy) -> bool:
    """Whether the data leaves the holder's transfer zone (CN to HK is cross-border under PIPL)."""
    if event.recipient is None:
        return False
    source = taxonomy.region("holder.region", event.holder.region)
    dest = taxonomy.region("recipient.region", event.recipient.region)
    return source.zone != dest.zone


def _check_id(field: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidEventError(field, value, "must be a non-empty string")
    if len(value) > _MAX_ID:
        raise InvalidEventError(field, value[:40] + "...", f"must be at most {_MAX_ID} characters")


def _check_time(field: str, value: object) -> None:
    if not isinstance(value, datetime):
        raise InvalidEventError(field, value, "must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidEventError(field, value.isoformat(), "must be timezone-aware (naive datetimes are ambiguous)")


def _check_subject(event: PersonalDataEvent, taxonomy: Taxonomy) -> None:
    if event.scope is Scope.SUBJECT:
        _check_id("subject_id", event.subject_id)
        if event.bulk_as_of is not None:
            raise InvalidEventError("bulk_as_of", event.bulk_as_of, "only a BULK event has bulk_as_of")
    else:
        if event.subject_id is not None:
            raise InvalidEventError("subject_id", event.subject_id, "a BULK event names no subject")
        if event.event_type not in (EventType.SHARED, EventType.TRANSFERRED, EventType.ERASED):
            raise InvalidEventError("scope", "BULK", f"a {event.event_type.value} event is about one subject")
        _check_time("bulk_as_of", event.bulk_as_of)
    for linked in event.linked_subject_ids:
        _check_id("linked_subject_ids", linked)
    if event.subject_jurisdiction is not None:
        taxonomy.region("subject_jurisdiction", event.subject_jurisdiction)


def _check_categories(event: PersonalDataEvent, taxonomy: Taxonomy) -> None:
    if not event.categories:
        raise InvalidEventError("categories", [], "must name at least one data category")
    for key in event.categories:
        taxonomy.category("categories", key)


def _check_party(field: str, name: str, role: str, region: str, taxonomy: Taxonomy) -> None:
    _check_id(f"{field}.name", name)
    taxonomy.role(f"{field}.role", role)
    taxonomy.region(f"{field}.region", region)


def _check_flow(event: PersonalDataEvent, taxonomy: Taxonomy) -> None:
    recipient = event.recipient
    if recipient is None:
        raise InvalidEventError("recipient", None, f"a {event.event_type.value} event needs a recipient")
    _check_party("recipient", recipient.name, recipient.role, recipient.region, taxonomy)
    if recipient.name == event.holder.name and recipient.region == event.holder.region:
        raise InvalidEventError("recipient.name", recipient.name, "is the holder itself")
    crossing = is_cross_border(event, taxonomy)
    if event.event_type is EventType.TRANSFERRED and event.transfer_kind is None:
        raise InvalidEventError("transfer_kind", None, "a TRANSFERRED event needs a transfer kind")
    if event.event_type is EventType.SHARED and event.transfer_kind is not None:
        raise InvalidEventError("transfer_kind", event.transfer_kind.value, "a SHARED event has no transfer kind")
    if event.transfer_kind is TransferKind.CROSS_BORDER and not crossing:
        raise InvalidEventError(
            "transfer_kind",
            "CROSS_BORDER",
            f"{event.holder.region} and {recipient.region} are in the same zone; not a cross-border transfer",
        )
    if not crossing:
        return
    if event.mechanism is None:
        raise InvalidEventError(
            "mechanism",
            None,
            f"data leaves {event.holder.region} for {recipient.region}: a cross-border flow needs a transfer mechanism",
        )
    mechanism = taxonomy.mechanism("mechanism", event.mechanism)
    regimes = taxonomy.region("holder.region", event.holder.region).regimes
    if regimes and not mechanism.recognised_by(regimes):
        raise InvalidEventError(
            "mechanism",
            event.mechanism,
            f"not recognised by {', '.join(regimes)}, which governs data leaving {event.holder.region}",
        )


def _check_erasure(event: PersonalDataEvent) -> None:
    if event.erasure_outcome is None:
        raise InvalidEventError("erasure_outcome", None, "an ERASED event needs an outcome")
    if event.erasure_outcome.value == "HOLD" and not event.hold_reason:
        raise InvalidEventError("hold_reason", event.hold_reason, "an erasure on HOLD needs the legal reason")


def _check_consent(event: PersonalDataEvent) -> None:
    if event.consent_status is None:
        raise InvalidEventError("consent_status", None, "a CONSENT event needs GRANTED or WITHDRAWN")
    if event.consent_kind is None:
        raise InvalidEventError("consent_kind", None, "a CONSENT event needs a kind (GENERAL, SEPARATE, GUARDIAN)")
