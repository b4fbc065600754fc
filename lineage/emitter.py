"""The emitter SDK: one object per service, one method call per personal-data event.

>>> with Emitter(system="checkout", region="CN", settings=settings) as emit:   # doctest: +SKIP
...     emit.collected("user-42", ["user.contact.phone_number"],
...                    purpose="essential.service.payment_processing", legal_basis="CONTRACT")

Each call validates the event (raising a ``LineageError`` that names the field) before anything is
sent, keys the message by subject so one subject's events stay in order, and returns a
``Delivery``. A failed delivery is never swallowed: it raises from ``Delivery.result()``, and the
emitter raises it again from its next call, ``flush()`` or ``close()``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from lineage.codec import Codec
from lineage.errors import DeliveryError, InvalidEventError, UnknownValueError
from lineage.events import (
    AgeBand,
    ConsentKind,
    ConsentStatus,
    ErasureOutcome,
    EventType,
    LegalBasis,
    Party,
    PersonalDataEvent,
    Scope,
    TransferKind,
)
from lineage.settings import Settings
from lineage.sink import Delivery, EventSink
from lineage.taxonomy import Taxonomy, default_taxonomy, suggest
from lineage.validation import validate

__all__ = ["Emitter"]

INTERNAL = "internal"


class Emitter:
    """Validates, encodes and sends one service's personal-data events."""

    def __init__(
        self,
        *,
        system: str,
        region: str,
        settings: Settings | None = None,
        sink: EventSink | None = None,
        taxonomy: Taxonomy | None = None,
        codec: Codec | None = None,
    ) -> None:
        """Name the emitting service and where it runs; connect to Kafka unless ``sink`` is given."""
        self.settings = settings or Settings()
        self.taxonomy = taxonomy or (
            Taxonomy.load([self.settings.taxonomy_dir]) if self.settings.taxonomy_dir else default_taxonomy()
        )
        self.taxonomy.region("region", region)
        if not system.strip():
            raise InvalidEventError("system", system, "must be a non-empty string")
        self.system = system
        self.region = region
        self.codec = codec or Codec()
        self._failures: list[DeliveryError] = []
        if sink is None:
            from lineage.kafka_client import KafkaEventSink  # the Kafka dependency stays at the edge

            sink = KafkaEventSink(self.settings)
        self._sink = sink

    # -- the five event kinds -----------------------------------------------------------------

    def collected(
        self,
        subject_id: str,
        categories: Iterable[str],
        *,
        purpose: str,
        legal_basis: LegalBasis | str,
        source: str = "direct",
        holder: Party | None = None,
        **details: Any,
    ) -> Delivery:
        """Record that this service collected the subject's data (``source``: 'direct' or a party)."""
        return self.emit(
            self.event(
                EventType.COLLECTED,
                subject_id=subject_id,
                categories=categories,
                purpose=purpose,
                legal_basis=legal_basis,
                source=source,
                holder=holder,
                **details,
            )
        )

    def shared(
        self,
        subject_id: str | None,
        categories: Iterable[str],
        *,
        recipient: Party,
        purpose: str,
        mechanism: str | None = None,
        bulk_as_of: datetime | None = None,
        **details: Any,
    ) -> Delivery:
        """Record a disclosure to ``recipient``; ``subject_id=None`` with ``bulk_as_of`` is a bulk export."""
        return self.emit(
            self.event(
                EventType.SHARED,
                subject_id=subject_id,
                categories=categories,
                recipient=recipient,
                purpose=purpose,
                mechanism=mechanism,
                bulk_as_of=bulk_as_of,
                **details,
            )
        )

    def transferred(
        self,
        subject_id: str | None,
        categories: Iterable[str],
        *,
        recipient: Party,
        purpose: str,
        transfer_kind: TransferKind | str = TransferKind.CROSS_BORDER,
        mechanism: str | None = None,
        bulk_as_of: datetime | None = None,
        **details: Any,
    ) -> Delivery:
        """Record a cross-border transfer or a move to another controller (``transfer_kind``)."""
        return self.emit(
            self.event(
                EventType.TRANSFERRED,
                subject_id=subject_id,
                categories=categories,
                recipient=recipient,
                purpose=purpose,
                transfer_kind=transfer_kind,
                mechanism=mechanism,
                bulk_as_of=bulk_as_of,
                **details,
            )
        )

    def erased(
        self,
        subject_id: str | None,
        categories: Iterable[str],
        *,
        outcome: ErasureOutcome | str = ErasureOutcome.ERASED,
        hold_reason: str | None = None,
        holder: Party | None = None,
        bulk_as_of: datetime | None = None,
        **details: Any,
    ) -> Delivery:
        """Record an erasure, anonymisation, or a hold where a legal duty forbids erasure."""
        return self.emit(
            self.event(
                EventType.ERASED,
                subject_id=subject_id,
                categories=categories,
                erasure_outcome=outcome,
                hold_reason=hold_reason,
                holder=holder,
                bulk_as_of=bulk_as_of,
                **details,
            )
        )

    def consent(
        self,
        subject_id: str,
        categories: Iterable[str],
        *,
        status: ConsentStatus | str,
        kind: ConsentKind | str,
        purpose: str,
        consent_ref: str | None = None,
        **details: Any,
    ) -> Delivery:
        """Record consent granted or withdrawn (general, separate, or a guardian's)."""
        return self.emit(
            self.event(
                EventType.CONSENT,
                subject_id=subject_id,
                categories=categories,
                consent_status=status,
                consent_kind=kind,
                purpose=purpose,
                consent_ref=consent_ref,
                **details,
            )
        )

    # -- building, sending, flushing ------------------------------------------------------

    def event(self, event_type: EventType | str, **fields: Any) -> PersonalDataEvent:
        """Build (not send) an event of this service, filling id, time, scope and holder defaults."""
        return build_event(event_type, system=self.system, system_region=self.region, **fields)

    def emit(self, event: PersonalDataEvent) -> Delivery:
        """Validate, encode and send a built event."""
        self._raise_failures()
        validate(event, self.taxonomy)
        key = (event.subject_id if event.scope is Scope.SUBJECT else event.holder.name) or ""
        return self._sink.send(
            self.settings.topic,
            key.encode("utf-8"),
            self.codec.encode(event),
            event.event_id,
            self._failures.append,
        )

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait for every sent event; raise the first delivery failure, if any."""
        self._sink.flush(timeout_s if timeout_s is not None else self.settings.delivery_timeout_s)
        self._raise_failures()

    def close(self) -> None:
        """Flush, release the connection, then raise any delivery failure."""
        try:
            self._sink.close(self.settings.delivery_timeout_s)
        finally:
            self._raise_failures()

    def __enter__(self) -> Emitter:
        """Use as a context manager; leaving it flushes and closes."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close; a delivery failure is raised unless another error is already on its way."""
        if exc is None:
            self.close()
        else:
            try:
                self.close()
            except DeliveryError:
                pass  # the original exception is the one the caller needs to see first

    def _raise_failures(self) -> None:
        if self._failures:
            first = self._failures[0]
            count = len(self._failures)
            self._failures.clear()
            if count > 1:
                first.add_note(f"{count - 1} more event(s) also failed delivery")
            raise first


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(PersonalDataEvent))
_ENUM_FIELDS: dict[str, Any] = {
    "event_type": EventType,
    "scope": Scope,
    "age_band": AgeBand,
    "legal_basis": LegalBasis,
    "consent_kind": ConsentKind,
    "consent_status": ConsentStatus,
    "transfer_kind": TransferKind,
    "erasure_outcome": ErasureOutcome,
}


def build_event(event_type: EventType | str, *, system: str, system_region: str, **fields: Any) -> PersonalDataEvent:
    """Build an event from plain values: enum names as strings, categories as any iterable.

    Fills ``event_id`` (a new UUID), ``occurred_at`` (now), ``scope`` (BULK when there is no subject
    but a ``bulk_as_of``) and ``holder`` (this system, role 'internal'). Bad values raise
    ``InvalidEventError`` naming the field.
    """
    fields["event_type"] = event_type
    for name in fields:
        if name not in _FIELD_NAMES or name in ("system", "system_region"):
            raise UnknownValueError(name, fields[name], "event field", suggest(name, _FIELD_NAMES))
    if fields.get("categories") is None:
        raise InvalidEventError("categories", None, "is required: name at least one data category")
    for name, enum in _ENUM_FIELDS.items():
        value = fields.get(name)
        if value is not None and not isinstance(value, enum):
            fields[name] = _enum(name, enum, value)
    if fields.get("event_id") is None:
        fields["event_id"] = str(uuid.uuid4())
    if fields.get("occurred_at") is None:
        fields["occurred_at"] = datetime.now(UTC)
    if fields.get("scope") is None:
        bulk = fields.get("subject_id") is None and fields.get("bulk_as_of") is not None
        fields["scope"] = Scope.BULK if bulk else Scope.SUBJECT
    if fields.get("holder") is None:
        fields["holder"] = Party(name=system, role=INTERNAL, region=system_region)
    for name in ("categories", "linked_subject_ids"):
        value = fields.get(name)
        if isinstance(value, str):
            raise InvalidEventError(name, value, "must be a list of strings, not one string")
        if value is not None:
            fields[name] = tuple(value)
    if fields.get("age_band") is None:
        fields.pop("age_band", None)
    return PersonalDataEvent(system=system, system_region=system_region, **fields)


def _enum(field: str, enum: Any, value: object) -> Any:
    try:
        return enum(str(value).upper())
    except ValueError:
        choices = ", ".join(m.value for m in enum)
        raise InvalidEventError(field, value, f"must be one of {choices}") from None
