"""The nightly-exports benchmark's world and plain replay: the replay and lineage's answers agree."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import nightly_exports as bench  # noqa: E402

from lineage.store import Store  # noqa: E402


def test_replay_gives_lineages_answers_on_a_small_world(tmp_path: Path) -> None:
    """At 300 people, both breaches, an access request by a linked identifier and retention agree exactly."""
    world = bench.World(300)
    records, identifier = bench.generate(world)
    location = bench.local(tmp_path / "store")
    bench.ingest(records, location)
    q = bench.Questions.of(world, identifier)
    store = Store(location)
    found = {kind: bench.ask(store, kind, q) for kind in bench.ASKED}
    store.close()
    lineage = bench.as_answers(found, q)
    events = bench.read_events(location)
    assert len(events) == len(records)
    ours = bench.replay(events, q)

    assert bench.differences(ours, lineage) == []
    # the world exercises what the answers must get right: both hops, an erasure, a link, overdue data
    assert len(lineage.breach["adnet"]) > 0 and len(lineage.breach["analytics"]) > len(lineage.breach["adnet"])
    assert identifier.startswith("d"), "asked by a linked second identifier"
    held = {(c, h): still for c, h, _, still, _ in lineage.access}
    assert held[("user.contact.email", "app")] is False and held[("user.contact.email", "analytics")] is True
    assert {h for h, *_ in lineage.retention} == {"app", "analytics", "adnet"}


def test_replay_refuses_what_it_does_not_model() -> None:
    """A bulk erasure in the log stops the replay with one plain error rather than a wrong answer."""
    bulk_erasure = ("ERASED", None, [], ["user"], "app", None, 2, 1, "ERASED", None)
    q = bench.Questions(t1=0, t2=10, now=10, identifier="p0000000")
    with pytest.raises(bench.ReplayError, match="bulk erasure"):
        bench.replay([bulk_erasure], q)
