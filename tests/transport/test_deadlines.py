"""The deadline rule every Kafka sink keeps: acknowledged deliveries leave quietly, late ones fail once."""

from __future__ import annotations

from collections import deque

from lineage.transport.deadlines import DeadlineDelivery, take_failed
from lineage.transport.sink import Receipt


class _Delivery(DeadlineDelivery):
    """A delivery whose outcome the test sets, acknowledged through the ``acked`` flag as the confluent client does."""

    __slots__ = ("failed",)

    def __init__(self, event_id: str, timeout_s: float = 60.0) -> None:
        super().__init__(event_id, "t", b"k", b"v", timeout_s)
        self.failed = False

    @property
    def done(self) -> bool:
        return self.acked or self.failed

    def acknowledged(self) -> bool:
        return self.acked

    def refused(self) -> None:
        return None

    def reason(self) -> str:
        return "refused by the test"

    def wait(self, seconds: float) -> None:
        return None

    def receipt(self) -> Receipt:
        raise AssertionError("not asked")


def test_acknowledged_heads_leave_and_the_scan_stops_at_one_in_time() -> None:
    """Acked deliveries at the head are dropped without a failure; the first pending one in time stays."""
    a, b, c = _Delivery("a"), _Delivery("b"), _Delivery("c")
    a.acked = b.acked = True
    pending = deque([a, b, c])
    assert take_failed(pending, closed=False) == []
    assert list(pending) == [c]


def test_a_delivery_acknowledged_after_its_deadline_still_fails_once() -> None:
    """One reported late (expired) stays failed even if the ack comes after: it was reported undelivered."""
    late, next_ = _Delivery("late", timeout_s=0.0), _Delivery("next")
    assert late.error() is not None  # reported as failed at its deadline: expired from now on
    late.acked = True
    pending = deque([late, next_])
    failed = take_failed(pending, closed=False)
    assert [d.event_id for d, _ in failed] == ["late"]
    assert list(pending) == [next_]


def test_a_failed_delivery_behind_acknowledged_ones_is_reported() -> None:
    """The scan passes acked heads and reports the failed one behind them, with its reason."""
    a, bad = _Delivery("a"), _Delivery("bad")
    a.acked, bad.failed = True, True
    failed = take_failed(deque([a, bad]), closed=False)
    assert [(d.event_id, "refused by the test" in str(e)) for d, e in failed] == [("bad", True)]
