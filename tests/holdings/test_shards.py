"""The holdings engine run on subject shards (each with every bulk event) adds up to one engine over all."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lineage.contract.records import Record
from lineage.holdings import HoldingsEngine, event_from_record
from lineage.holdings.shards import merge, persons, shards_for, split
from tests.fixtures import examples, histories, nightly_histories
from tests.holdings.test_engine import _canonical


def _one(records: list[Record]) -> HoldingsEngine:
    engine = HoldingsEngine()
    engine.apply(event_from_record(r) for r in records)
    return engine


def _sharded(records: list[Record], k: int) -> list[HoldingsEngine]:
    engines = []
    for events in split((event_from_record(r) for r in records), k):
        engine = HoldingsEngine()
        engine.apply(events)
        engines.append(engine)
    return engines


def _check(records: list[Record], k: int) -> None:
    engines = _sharded(records, k)
    flows = [sorted(e.flow_events()) for e in engines]
    assert all(f == flows[0] for f in flows), "every shard makes the same flow events"
    homes = [{r.subject for r in e.runs()} for e in engines]
    assert sum(map(len, homes)) == len(set().union(*homes)), "runs are disjoint by subject"
    links = [link for e in engines for link in e.links()]
    whole = _one(records)
    assert sorted(persons(links)) == sorted(whole.persons())
    assert _canonical(merge(engines)) == _canonical(whole)


@settings(max_examples=examples(300))
@given(histories(), st.integers(1, 5))
def test_shards_of_random_histories_add_up_to_one_engine(records: list[Record], k: int) -> None:
    """Chained bulk flows, erasures, links: K subject shards' runs, flows and links equal one engine's."""
    _check(records, k)


@settings(max_examples=examples(300))
@given(nightly_histories(), st.integers(1, 5))
def test_shards_of_nightly_histories_add_up_to_one_engine(records: list[Record], k: int) -> None:
    """Re-sent flows across a new year, bulk erasures splitting runs: sharded equals one engine."""
    _check(records, k)


def test_a_bulk_event_goes_to_every_shard_and_a_subject_event_to_one() -> None:
    """Routing: bulk events are broadcast, a subject's events always land on the same one shard."""
    assert list(shards_for("BULK", None, 4)) == [0, 1, 2, 3]
    home = shards_for("SUBJECT", "s1", 4)
    assert len(home) == 1 and shards_for("SUBJECT", "s1", 4) == home
    assert {shards_for("SUBJECT", f"s{i}", 4)[0] for i in range(100)} == {0, 1, 2, 3}
