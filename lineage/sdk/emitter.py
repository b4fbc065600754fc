"""The emitter SDK: one object per service, one method call per personal-data event.

>>> with Emitter(system="checkout", region="CN", settings=settings) as emit:   # doctest: +SKIP
...     emit.collected("user-42", ["user.contact.phone_number"],
...                    purpose="essential.service.payment_processing", legal_basis="CONTRACT")

Each call validates the event (raising a ``LineageError`` that names the field) before anything is
sent, keys the message by subject so one subject's events stay in order, and returns a
``Delivery``, which resolves (acknowledged, or failed with its event id) within
``settings.delivery_timeout_s``. A failed delivery is never swallowed:

- without a spool it raises from ``Delivery.result()``, and the emitter raises an
  ``UndeliveredError`` listing every failed event id from a later call, or at the latest from
  ``flush()`` or ``close()``; each failed id is reported once;
- with ``settings.spool_dir`` set, failed events go to a private local file instead, and so does
  every later event until the last of the spool is on its way (keeping their order); the emitter
  sends them again, oldest first, once the broker takes a probe event. Events then go straight to
  the broker behind that last round: queueing them in the spool until it is empty would never end
  while a caller keeps sending, since new events always arrive while a round waits for its acks
  (measured: never empty again at 1,750 calls a second). ``close()`` then raises an
  ``UndeliveredError`` (``spooled=True``) naming the events still waiting, which the next emitter
  for the topic with the same spool folder sends.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
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
from lineage.contract.records import Record, build_event, record_of, to_record
from lineage.contract.taxonomy import Taxonomy, default_taxonomy
from lineage.contract.validation import Validator
from lineage.errors import DeliveryError, InvalidEventError, UndeliveredError
from lineage.sdk.prepared import Prepared, Preparer
from lineage.sdk.spool import Spool, SpooledDelivery, SpoolEntry
from lineage.settings import Settings
from lineage.transport.provenance import sdk_headers
from lineage.transport.sink import Delivery, EventSink, Headers, Undelivered

__all__ = ["Emitter"]

# Resending the spool: one event first (a probe), then rounds of up to this many once the broker took
# it; after a failed round, wait this long before the next probe.
_ROUND = 10_000
_PROBE_EVERY_S = 1.0


def sdk_version() -> str:
    """The version of the installed SDK, as its events' provenance names it."""
    try:
        return version("lineage")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


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
        headers: Headers | None = None,
    ) -> None:
        """Name the emitting service and where it runs; connect to Kafka unless ``sink`` is given.

        Every event carries ``headers`` as Kafka record headers (default: the SDK's provenance,
        ``lineage.via=sdk`` and its version; ``lineage.transport.provenance``); ``emit`` may
        give others for one event.
        """
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
        self._prepare = Preparer(self._validator, self.codec)
        self.headers = sdk_headers(sdk_version()) if headers is None else headers
        if sink is None:
            from lineage.transport.clients import event_sink  # the Kafka dependency stays at the edge

            sink = event_sink(self.settings)
        self._sink = sink
        self._unreported: list[Undelivered] = []  # failed, not yet raised to the caller (no spool)
        self._spool = Spool(self.settings.spool_dir, self.settings.topic) if self.settings.spool_dir else None
        self._round: deque[Delivery] = deque()  # spooled events resent and not yet acknowledged
        self._round_size = 0  # how many spool entries the current round covers
        self._round_limit = 1
        self._last_round = False  # the round in flight holds the whole spool: new events go straight behind it
        self._next_probe = 0.0

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
            "COLLECTED",
            {
                "subject_id": subject_id,
                "categories": categories,
                "purpose": purpose,
                "legal_basis": legal_basis,
                "source": source,
                "holder": holder,
            },
            details,
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
            "SHARED",
            {
                "subject_id": subject_id,
                "categories": categories,
                "recipient": recipient,
                "purpose": purpose,
                "mechanism": mechanism,
                "bulk_as_of": bulk_as_of,
            },
            details,
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
            "TRANSFERRED",
            {
                "subject_id": subject_id,
                "categories": categories,
                "recipient": recipient,
                "purpose": purpose,
                "transfer_kind": transfer_kind,
                "mechanism": mechanism,
                "bulk_as_of": bulk_as_of,
            },
            details,
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
            "ERASED",
            {
                "subject_id": subject_id,
                "categories": categories,
                "erasure_outcome": outcome,
                "hold_reason": hold_reason,
                "holder": holder,
                "bulk_as_of": bulk_as_of,
            },
            details,
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
            "CONSENT",
            {
                "subject_id": subject_id,
                "categories": categories,
                "consent_status": status,
                "consent_kind": kind,
                "purpose": purpose,
                "consent_ref": consent_ref,
            },
            details,
        )

    # -- building, sending, flushing ------------------------------------------------------

    def event(self, event_type: EventType | str, **fields: Any) -> PersonalDataEvent:
        """Build (not send) an event of this service, filling id, time, scope and holder defaults."""
        return build_event(event_type, system=self.system, system_region=self.region, **fields)

    def emit(self, event: PersonalDataEvent, *, headers: Headers | None = None) -> Delivery:
        """Validate, encode and send a built event (with ``headers``, else the emitter's)."""
        return self.emit_record(to_record(event), headers=headers)

    def emit_record(self, record: Record, *, headers: Headers | None = None) -> Delivery:
        """Validate, encode and send a record (``lineage.contract.records``); the path every method takes.

        ``headers`` (default: the emitter's) go with it as Kafka record headers, and into the spool.
        """
        self._take_failures()
        return self._send_message(self._prepare(record), headers)

    def emit_batch(
        self, batch: Iterable[Prepared], *, headers: Headers | None = None
    ) -> list[Delivery | DeliveryError]:
        """Send messages a ``Preparer`` made (validated and encoded once): each one's delivery, or why it was not sent.

        The HTTP gateway's path. A message not even queued (no broker answers, no spool) is its
        ``DeliveryError``, in its place, and the rest are still sent. Earlier failures are not raised
        here: the next ``emit``, ``flush`` or ``close`` raises them (or ``take_failures`` returns
        them), so a batch is never refused for another's events (the gateway answers each request
        for its own). With a spool, failures are looked for before each message, as ``emit`` does,
        so a message queues in the spool behind a failed one and one subject's events keep their order.
        """
        spooling = self._spool is not None
        self._take_failures(raise_them=False)
        sent: list[Delivery | DeliveryError] = []
        for prepared in batch:
            if spooling:
                self._take_failures(raise_them=False)
            try:
                sent.append(self._send_message(prepared, headers))
            except DeliveryError as exc:
                sent.append(exc)
        return sent

    def _send_message(self, prepared: Prepared, headers: Headers | None) -> Delivery:
        event_id, key, value = prepared.event_id, prepared.key, prepared.value
        headers = self.headers if headers is None else headers
        spool = self._spool
        if spool is None:
            return self._sink.send(self.settings.topic, key, value, event_id, headers)
        if spool and not self._last_round:  # a backlog: this event queues behind it, so events reach the topic in order
            spool.append([SpoolEntry(event_id, key, value, headers)])
            self._resend()
            return SpooledDelivery(event_id, self.settings.topic, "older events still wait to be sent")
        try:
            delivery = self._sink.send(self.settings.topic, key, value, event_id, headers)
        except DeliveryError as exc:
            spool.append([SpoolEntry(event_id, key, value, headers)])
            self._last_round = False
            self._next_probe = time.monotonic() + _PROBE_EVERY_S
            return SpooledDelivery(event_id, self.settings.topic, exc.detail)
        if self._last_round:
            self._resend()  # notices the last round acknowledged: the spool is emptied
        return delivery

    def _send(self, event_type: str, fields: dict[str, Any], details: dict[str, Any]) -> Delivery:
        # event_type as the plain string: hashing an enum member calls Python code, on every emit
        if details:  # merged only when there are any: a copy per call otherwise
            fields.update(details)
        return self.emit_record(record_of(event_type, self.system, self.region, fields))

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait for every sent event (resending the spool meanwhile); raise ``UndeliveredError`` if any is not.

        Without a spool it lists the failed events not reported before; with one, every event
        still waiting in the spool.
        """
        self._drain(timeout_s if timeout_s is not None else self.settings.delivery_timeout_s)
        self._take_failures()
        if self._spool:
            raise self._spooled_error()

    def take_failures(self) -> list[str]:
        """Without waiting: spool the deliveries found failed, or (no spool) return their ids and forget them.

        For a caller that reads every ``Delivery`` it was given (the HTTP gateway): it has reported
        each failure itself, so a later call must not raise them again. With a spool it also moves
        resending on, and returns nothing: every failure is in the spool, to be sent again.
        """
        self._take_failures(raise_them=False)
        if self._spool is not None:
            self._resend()
            return []
        failed, self._unreported = self._unreported, []
        return [f.event_id for f in failed]

    @property
    def spooled(self) -> int:
        """How many events wait in the spool to be sent again (0 without a spool)."""
        return len(self._spool) if self._spool is not None else 0

    def close(self) -> None:
        """Flush, release the connection and the spool; raise ``UndeliveredError`` naming what was not delivered."""
        try:
            try:
                self._drain(self.settings.delivery_timeout_s)
            finally:
                self._sink.close(self.settings.delivery_timeout_s)
        finally:
            try:
                self._take_failures(raise_them=False)
            finally:
                spool, self._spool = self._spool, None
                if spool is not None:
                    spool.close()
            if spool is not None and spool:
                raise self._spooled_error(spool)
            if self._unreported:
                raise self._undelivered_error(note=False)

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
            except DeliveryError as failure:
                # the original exception is the one the caller needs to see first; it says this too
                exc.add_note(f"and on closing the emitter: {str(failure).splitlines()[0]}")

    # -- failures and the spool ------------------------------------------------------------

    def _take_failures(self, *, raise_them: bool = True) -> None:
        """Spool the deliveries found failed, or (no spool) raise them all as one ``UndeliveredError``."""
        failed = self._sink.failures()
        if failed:
            spool = self._spool
            if spool is None:
                self._unreported += failed
            else:
                # A resent event that fails again is still in the spool: the round ends, entries stay.
                fresh = [SpoolEntry(f.event_id, f.key, f.value, f.headers) for f in failed if f.event_id not in spool]
                if len(fresh) < len(failed) and self._round:
                    self._round.clear()
                    self._round_size, self._round_limit = 0, 1
                    self._next_probe = time.monotonic() + _PROBE_EVERY_S
                spool.append(fresh)
                self._last_round = False  # from now on events queue behind the failed ones again
        if raise_them and self._unreported:
            raise self._undelivered_error(note=True)

    def _undelivered_error(self, *, note: bool) -> UndeliveredError:
        failed, self._unreported = self._unreported, []
        error = UndeliveredError(self.settings.topic, [f.event_id for f in failed], failed[0].error.detail)
        if note:
            error.add_note("raised by a later call: the event of that call was not sent; send it again")
        return error

    def _spooled_error(self, spool: Spool | None = None) -> UndeliveredError:
        spool = spool or self._spool
        assert spool is not None
        return UndeliveredError(
            self.settings.topic,
            spool.event_ids,
            f"the broker did not take them; kept in {spool.path} for the next emitter with this spool_dir",
            spooled=True,
        )

    def _resend(self) -> None:
        """Advance resending the spool, without waiting: finish a round, or start one when due."""
        spool = self._spool
        if spool is None:
            return
        round_ = self._round
        while round_:
            try:
                round_[0].result(0)
            except DeliveryError:
                break  # not acknowledged yet; or failed, which _take_failures sees and handles
            round_.popleft()
        if self._round_size and not round_:  # every event of the round acknowledged
            spool.drop(self._round_size)
            self._round_size, self._round_limit = 0, _ROUND
            self._last_round = False
        if self._round_size or not spool or time.monotonic() < self._next_probe:
            return
        entries = spool.head(self._round_limit)
        sent: list[Delivery] = []
        for e in entries:
            try:
                sent.append(self._sink.send(self.settings.topic, e.key, e.value, e.event_id, e.headers))
            except DeliveryError:
                self._round_limit = 1
                self._next_probe = time.monotonic() + _PROBE_EVERY_S
                self._round.extend(sent)  # already queued: let them finish, the round does not count
                return
        self._round.extend(sent)
        self._round_size = len(entries)
        self._last_round = len(entries) == len(spool)

    def _drain(self, timeout_s: float) -> None:
        """Wait for the sink and resend the spool until it is empty or ``timeout_s`` has passed."""
        end = time.monotonic() + timeout_s
        self._sink.flush(timeout_s)
        spool = self._spool
        self._next_probe = 0.0  # try at once: the caller is waiting for exactly this
        while spool is not None:
            self._take_failures(raise_them=False)
            self._resend()
            now = time.monotonic()
            if not spool or now >= end:
                return
            if self._round:
                self._sink.flush(max(end - now, 0.0))
            else:
                time.sleep(max(min(self._next_probe - now, end - now, 0.5), 0.01))
