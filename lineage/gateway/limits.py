"""The per-token rate bound: a token bucket of events per second, refilled continuously."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RateLimit"]


class RateLimit:
    """Up to ``rate`` events a second per token, with bursts of up to one second's worth.

    A request is taken whole or refused whole: a batch larger than what is left waits for the
    bucket to refill (the caller answers 429 with the seconds to wait), and nothing of it is sent.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        """Allow ``rate`` events a second per token (0 or less: no bound)."""
        self.rate = rate
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # token id -> (events left, when counted)

    def take(self, token_id: str, events: int) -> float:
        """Take ``events`` from the token's bucket: 0.0 if allowed, else the seconds until they would be."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            left, then = self._buckets.get(token_id, (self.rate, now))
            left = min(self.rate, left + (now - then) * self.rate)
            if events <= left:
                self._buckets[token_id] = (left - events, now)
                return 0.0
            self._buckets[token_id] = (left, now)
            return (min(events, self.rate) - left) / self.rate if events <= self.rate else float("inf")
