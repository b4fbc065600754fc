"""The emitter SDK: one object per service, one method call per personal-data event.

>>> with Emitter(system="checkout", region="CN", settings=settings) as emit:   # doctest: +SKIP
...     emit.collected("user-42", ["user.contact.phone_number"],
...                    purpose="essential.service.payment_processing", legal_basis="CONTRACT")

Each call validates the event (raising a ``LineageError`` that names the field) before anything is
sent, keys the message by subject so one subject's events stay in order, and returns a
``Delivery``. A failed delivery is never swallowed: it raises from ``Delivery.result()``, and the
emitter raises it again from a later call once the broker has answered, and at the latest from
``flush()`` or ``close()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from types import TracebackType
from typing import Any

from lineage.codec.avro import Codec
from lineage.contract.events import (
    ConsentKind,
    ConsentStatus,
    ErasureOutcome,
    EventType,
    LegalBasis,
    Party,
    PersonalDataEvent,
    TransferKind,
)
from lineage.contract.records import Record, build_event, make_record, to_record
from lineage.contract.taxonomy import Taxonomy, default_taxonomy
from lineage.contract.validation import Validator
from lineage.errors import DeliveryError, InvalidEventError
from lineage.settings import Settings
from lineage.transport.sink import Delivery, EventSink

__all__ = ["Emitter"]


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
        self._validator = Validator(self.taxonomy)
        if not system.strip():
            raise InvalidEventError("system", system, "must be a non-empty string")
        self.system = system
        self.region = region
        self.codec = codec or Codec()
        if sink is None:
            from lineage.transport.kafka import KafkaEventSink  # the Kafka dependency stays at the edge

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
        return self._send(
            EventType.COLLECTED,
            {
                "subject_id": subject_id,
                "categories": categories,
                "purpose": purpose,
                "legal_basis": legal_basis,
                "source": source,
                "holder": holder,
            }
            | details,
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
        return self._send(
            EventType.SHARED,
            {
                "subject_id": subject_id,
                "categories": categories,
                "recipient": recipient,
                "purpose": purpose,
                "mechanism": mechanism,
                "bulk_as_of": bulk_as_of,
            }
            | details,
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
        return self._send(
            EventType.TRANSFERRED,
            {
                "subject_id": subject_id,
                "categories": categories,
                "recipient": recipient,
                "purpose": purpose,
                "transfer_kind": transfer_kind,
                "mechanism": mechanism,
                "bulk_as_of": bulk_as_of,
            }
            | details,
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
        return self._send(
            EventType.ERASED,
            {
                "subject_id": subject_id,
                "categories": categories,
                "erasure_outcome": outcome,
                "hold_reason": hold_reason,
                "holder": holder,
                "bulk_as_of": bulk_as_of,
            }
            | details,
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
        return self._send(
            EventType.CONSENT,
            {
                "subject_id": subject_id,
                "categories": categories,
                "consent_status": status,
                "consent_kind": kind,
                "purpose": purpose,
                "consent_ref": consent_ref,
            }
            | details,
        )

    # -- building, sending, flushing ------------------------------------------------------

    def event(self, event_type: EventType | str, **fields: Any) -> PersonalDataEvent:
        """Build (not send) an event of this service, filling id, time, scope and holder defaults."""
        return build_event(event_type, system=self.system, system_region=self.region, **fields)

    def emit(self, event: PersonalDataEvent) -> Delivery:
        """Validate, encode and send a built event."""
        return self.emit_record(to_record(event))

    def emit_record(self, record: Record) -> Delivery:
        """Validate, encode and send a record (``lineage.contract.records``); the path every method takes."""
        self._raise_failures()
        self._validator.check(record)
        key = record["subject_id"] if record["scope"] == "SUBJECT" else record["holder"]["name"]
        return self._sink.send(
            self.settings.topic, key.encode("utf-8"), self.codec.encode_record(record), record["event_id"]
        )

    def _send(self, event_type: EventType, fields: dict[str, Any]) -> Delivery:
        return self.emit_record(make_record(event_type, system=self.system, system_region=self.region, **fields))

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
        failures = self._sink.failures()
        if failures:
            first = failures[0]
            if len(failures) > 1:
                first.add_note(f"{len(failures) - 1} more event(s) also failed delivery")
            first.add_note("raised by a later call: the event of that call was not sent; send it again")
            raise first
