"""Events to Kafka through the SDK's emitter, answered only once the broker has them (or the spool does).

One ``Emitter`` serves every request (its calls are serialised by a lock; a request waits for its
own deliveries outside it, so requests overlap on the wire). A request's events are all read and
validated before this is called; here each is sent, and the answer waits until the broker
acknowledged every one (``acks=all``, idempotent producer). Without a spool, an event the broker
did not take fails the request (503) naming how many; with ``spool_dir``, it is kept in the spool
and sent again once the broker is back, and the answer says how many were spooled.

Idempotent by event id: the ids acknowledged lately (the last ``remember`` of them) are not sent
again, so a client retrying a batch whose answer it lost sends only what the broker does not have.
Past that window a retried event reaches the topic twice; both copies are stored, and the person's
answers read one per ``event_id``. An event sent without an ``event_id`` gets a new one each time:
clients that retry should set it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from lineage.errors import DeliveryError
from lineage.sdk.emitter import Emitter
from lineage.sdk.prepared import Prepared
from lineage.transport.sink import Delivery, Headers

__all__ = ["Outcome", "Relay", "Unacknowledged"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a request's events."""

    acknowledged: int
    spooled: int
    duplicates: int
    event_ids: list[str] = field(repr=False)


class Unacknowledged(DeliveryError):
    """Some events of a request were not acknowledged and no spool keeps them: the client sends them again."""

    def __init__(self, topic: str, missing: Sequence[str], total: int, detail: str) -> None:
        """Record which events the broker does not have."""
        self.missing = tuple(missing)
        super().__init__(missing[0], topic, f"{len(missing)} of {total} event(s) not acknowledged: {detail}")


class Relay:
    """Sends requests' events through one emitter and waits for the broker's acknowledgements."""

    def __init__(self, emitter: Emitter, *, remember: int = 100_000) -> None:
        """Send through ``emitter``; remember the last ``remember`` acknowledged ids (retries are not resent)."""
        self.emitter = emitter
        self.topic = emitter.settings.topic
        self._lock = threading.Lock()
        self._remember = remember
        self._recent: OrderedDict[str, None] = OrderedDict()

    def send(self, events: Sequence[Prepared], headers: Headers | None = None) -> Outcome:
        """Send ``events`` (with ``headers``: their provenance); return once each is acknowledged (or spooled).

        Raises ``Unacknowledged`` naming those the broker does not have when no spool keeps them.
        """
        ids = [e.event_id for e in events]
        with self._lock:
            self.emitter.take_failures()  # earlier requests' failures were answered there, not here
            fresh = {e.event_id: e for e in events if e.event_id not in self._recent}
            sent: list[Delivery] = []
            failed: list[tuple[str, str]] = []
            for event, delivery in zip(
                fresh.values(), self.emitter.emit_batch(fresh.values(), headers=headers), strict=True
            ):
                if isinstance(delivery, DeliveryError):  # not even queued (no broker answers, no spool)
                    failed.append((event.event_id, delivery.detail))
                else:
                    sent.append(delivery)
        for delivery in sent:
            try:
                delivery.result()
            except DeliveryError as exc:
                failed.append((delivery.event_id, exc.detail))
        spooling = self.emitter.settings.spool_dir is not None
        with self._lock:
            self.emitter.take_failures()  # with a spool: every failed one is in it before we answer
            lost = {i for i, _ in failed}
            self._keep(i for i in fresh if spooling or i not in lost)
        if failed and not spooling:
            missing = [i for i in fresh if i in lost]
            raise Unacknowledged(self.topic, missing, len(fresh), failed[0][1])
        return Outcome(len(fresh) - len(failed), len(failed), len(events) - len(fresh), ids)

    def tick(self) -> int:
        """Move the spool's resending on without a request (called every second); how many wait in it."""
        with self._lock:
            self.emitter.take_failures()
            return self.emitter.spooled

    def close(self) -> None:
        """Flush and close the emitter (``UndeliveredError`` names what stays in the spool)."""
        with self._lock:
            self.emitter.take_failures()
            self.emitter.close()

    def _keep(self, ids: Iterable[str]) -> None:
        recent = self._recent
        for i in ids:
            recent[i] = None
            recent.move_to_end(i)
        while len(recent) > self._remember:
            recent.popitem(last=False)
