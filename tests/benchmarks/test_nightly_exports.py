"""The nightly-exports benchmark's world and plain replay: the replay and lineage's answers agree."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import nightly_exports as bench  # noqa: E402

from lineage.store import Store  # noqa: E402


def _both(
    world: bench.World, records: list[bench.Record], identifier: str, folder: Path
) -> tuple[bench.Answers, bench.Answers]:
    """Store ``records``; lineage's answers and the replay's."""
    location = bench.local(folder)
    bench.ingest(records, location)
    bench.holdings_refresh()(location)  # answers read the holdings table
    q = bench.Questions.of(world, identifier)
    store = Store(location)
    found = {kind: bench.ask(store, kind, q) for kind in bench.ASKED}
    store.close()
    events = bench.read_events(location)
    assert len(events) == len(records)
    return bench.replay(events, q), bench.as_answers(found, q)


def test_replay_gives_lineages_answers_on_a_small_world(tmp_path: Path) -> None:
    """At 200 people, both breaches, an access request by a linked identifier and retention agree exactly."""
    world = bench.World(200)
    records, identifier = bench.generate(world)
    ours, lineage = _both(world, records, identifier, tmp_path / "store")

    assert bench.differences(ours, lineage) == []
    # the world exercises what the answers must get right: both hops, an erasure, a link, overdue data
    assert len(lineage.breach["adnet"]) > 0 and len(lineage.breach["analytics"]) > len(lineage.breach["adnet"])
    assert identifier.startswith("d"), "asked by a linked second identifier"
    held = {(c, h): still for c, h, _, still, _ in lineage.access}
    assert held[("user.contact.email", "app")] is False and held[("user.contact.email", "analytics")] is True
    assert {h for h, *_ in lineage.retention} == {"app", "analytics", "adnet"}


def test_replay_agrees_when_the_partner_erases_too(tmp_path: Path) -> None:
    """Erasures at the partner (in the window, and before the next nightly export re-sends) agree as well."""
    world = bench.World(120)
    records, identifier = bench.generate(world)
    t1, t2 = world.breach_window
    times = [t1 - timedelta(days=40), t1 + timedelta(days=3), t2 + timedelta(days=1)]
    for n, at in enumerate(times * 4):
        erased = bench.make_record(
            "ERASED", system="analytics", system_region="US", holder=bench.PARTNER, occurred_at=at,
            subject_id=bench.person(n), categories=["user.contact"], erasure_outcome="ERASED",
        )  # fmt: skip
        records.append(erased)
    ours, lineage = _both(world, records, identifier, tmp_path / "store")

    assert bench.differences(ours, lineage) == []


def test_replay_refuses_what_it_does_not_model() -> None:
    """A bulk erasure in the log stops the replay with one plain error rather than a wrong answer."""
    bulk_erasure = ("ERASED", None, [], ["user"], "app", None, 2, 1, "ERASED", None)
    q = bench.Questions(t1=0, t2=10, now=10, identifier="p0000000")
    with pytest.raises(bench.ReplayError, match="bulk erasure"):
        bench.replay([bulk_erasure], q)
