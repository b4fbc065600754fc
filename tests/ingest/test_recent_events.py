"""The events a maintainer keeps from its last refreshes, so that a late event's replay need not read them again."""

from __future__ import annotations

from lineage.holdings import Event
from lineage.ingest.holdings import Recent


def _event(at: int) -> Event:
    return Event(f"e{at}", "COLLECTED", at, "SUBJECT", "s1", [], ["user.contact"], "app", *([None] * 13))


def _record(recent: Recent, times: list[int]) -> None:
    assert [e.at for e in recent.record(iter([_event(t) for t in times]))] == times


def test_a_complete_memory_gives_the_events_from_a_time_on_and_lets_go_of_them() -> None:
    """``since`` returns every event at or after the time, in order, and forgets them (the replay records them)."""
    recent = Recent(None, None, 100)
    _record(recent, [1, 2, 2, 5, 8])
    assert [e.at for e in recent.since(2) or []] == [2, 2, 5, 8]
    assert len(recent) == 1


def test_a_memory_started_after_a_restore_holds_nothing_before_it() -> None:
    """An engine restored from the table at watermark 10: a replay from 10 or earlier must read the store."""
    recent = Recent(10, None, 100)
    _record(recent, [11, 12])
    assert recent.since(10) is None
    assert recent.complete_after == 9  # the store's replay is recorded from then on
    _record(recent, [10, 11, 12])
    assert [e.at for e in recent.since(11) or []] == [11, 12]


def test_the_oldest_events_are_dropped_past_the_limit_and_a_replay_reaching_them_reads_the_store() -> None:
    """Bounded: past ``limit`` (and a quarter) the oldest go, and a replay from their time is refused."""
    recent = Recent(None, None, 4)
    _record(recent, [1, 2, 3, 4, 5, 6])
    assert len(recent) == 4 and recent.complete_after == 2
    assert recent.since(2) is None
    _record(recent, [2, 3, 4, 5, 6])
    assert [e.at for e in recent.since(3) or []] == [3, 4, 5, 6]
