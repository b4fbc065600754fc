"""Deliveries with a deadline of their own: the promise every Kafka sink keeps, whatever its client.

Every send resolves within the delivery timeout: acknowledged, refused, or failed at its deadline
(and then failed for good, even if an acknowledgement comes later: it has been reported, perhaps
spooled, as undelivered; the store drops the duplicate resend by event id). ``DeadlineDelivery``
holds that rule once; each client's delivery says only how its library reports an outcome.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable
from typing import TypeVar

from lineage.errors import BrokerError, DeliveryError
from lineage.transport.sink import Headers, Receipt

__all__ = ["DeadlineDelivery", "flush_pending", "take_failed"]


class DeadlineDelivery(ABC):
    """A pending send: its bytes (to send again if it fails), and the instant it must be resolved by."""

    __slots__ = ("acked", "deadline", "event_id", "expired", "headers", "key", "timeout_s", "topic", "value")

    def __init__(
        self, event_id: str, topic: str, key: bytes, value: bytes, timeout_s: float, headers: Headers = ()
    ) -> None:
        """Start the clock: the delivery fails if not acknowledged within ``timeout_s``."""
        self.event_id = event_id
        self.headers = headers
        self.topic = topic
        self.key = key
        self.value = value
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.expired = False
        # A client that learns of acknowledgements by callback sets this as it does: the scan of
        # pending deliveries then pops them without a call each (most of an emit's own cost in it).
        self.acked = False

    # -- what the client library says ----------------------------------------------------

    @property
    @abstractmethod
    def done(self) -> bool:
        """Whether the client reported an outcome (acknowledged or failed)."""

    @abstractmethod
    def acknowledged(self) -> bool:
        """Whether the client reported the broker's acknowledgement."""

    @abstractmethod
    def refused(self) -> BrokerError | None:
        """The broker's refusal (bad credentials, an ACL) behind a reported failure, as our error; else None."""

    @abstractmethod
    def reason(self) -> str:
        """Why the client says the delivery failed, in one line."""

    @abstractmethod
    def wait(self, seconds: float) -> None:
        """Block until the client reports an outcome, for at most ``seconds`` (it may wake earlier)."""

    @abstractmethod
    def receipt(self) -> Receipt:
        """Where the broker stored the acknowledged message."""

    # -- the rule, once ---------------------------------------------------------------------

    def resolved(self, now: float) -> bool:
        """Whether the outcome is known: acknowledged, refused, or past the deadline."""
        return self.expired or self.done or now >= self.deadline

    def error(self) -> DeliveryError | None:
        """The failure of a resolved delivery, or None if the broker acknowledged it."""
        if not self.expired and self.done:
            if self.acknowledged():
                return None
            refused = self.refused()
            return DeliveryError(self.event_id, self.topic, str(refused) if refused else self.reason())
        self.expired = True
        return DeliveryError(
            self.event_id, self.topic, f"not acknowledged within the delivery timeout of {self.timeout_s:g} s"
        )

    def wait_until(self, end: float) -> None:
        """Wait until the delivery is resolved, or until ``end`` (a ``time.monotonic()`` instant)."""
        end = min(end, self.deadline)
        # a client's own timer may wake a little early: wait again until really resolved or due
        while not self.expired and not self.done:
            wait = end - time.monotonic()
            if wait <= 0:
                return
            self.wait(wait)

    def result(self, timeout_s: float | None = None) -> Receipt:
        """Wait for the acknowledgement; raise ``DeliveryError`` if it failed or the deadline passed."""
        self.wait_until(self.deadline if timeout_s is None else time.monotonic() + timeout_s)
        if not self.resolved(time.monotonic()):
            raise DeliveryError(
                self.event_id, self.topic, f"no acknowledgement within {timeout_s or 0:g} s yet (it may still arrive)"
            )
        error = self.error()
        if error is not None:
            raise self.refused() or error
        return self.receipt()


D = TypeVar("D", bound=DeadlineDelivery)


def take_failed(pending: deque[D], *, closed: bool) -> list[tuple[D, DeliveryError]]:
    """Remove the resolved deliveries at the head of ``pending``; return the failed ones with their errors.

    Deadlines grow in send order, so the scan stops at the first delivery still in time (cheaper
    than a callback per message). Once the sink is ``closed`` every delivery left counts as failed.
    """
    failed: list[tuple[D, DeliveryError]] = []
    now = 0.0
    while pending:
        head = pending[0]
        if head.acked and not head.expired:
            pending.popleft()
            continue
        if not head.expired and head.done:
            if head.acknowledged():
                pending.popleft()
                continue
        elif not head.expired and not closed:
            now = now or time.monotonic()
            if now < head.deadline:
                break
        pending.popleft()
        error = head.error()
        if error is not None:  # None: acknowledged after all
            failed.append((head, error))
    return failed


def flush_pending(pending: Iterable[DeadlineDelivery], timeout_s: float | None) -> None:
    """Wait until every delivery is acknowledged, refused, or past its deadline.

    Never longer than the delivery timeout; raises ``BrokerError`` only if ``timeout_s`` is shorter.
    """
    end = time.monotonic() + timeout_s if timeout_s is not None else float("inf")
    for delivery in list(pending):
        if delivery.resolved(time.monotonic()):
            continue
        delivery.wait_until(end)
        if not delivery.resolved(time.monotonic()):
            raise BrokerError(f"messages still unacknowledged after {timeout_s:g} s")
