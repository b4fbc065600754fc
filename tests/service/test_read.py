"""The answer service's pinned read: one answer's queries and its stamp read one state, whatever commits meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from lineage import default_taxonomy
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.service import answers
from lineage.service.read import STAMP_FACTS, Stamp, hold
from tests.fixtures import LAGGING_SUBJECT, lagging_store


def test_a_held_read_keeps_its_state_while_the_store_moves_on(tmp_path: Path) -> None:
    """A held store reads the snapshot it was held at, with its lag, after the holdings are refreshed past it."""
    store, behind = lagging_store(tmp_path / "s")
    held = hold(store)
    before = held.snapshot_id
    assert held.behind == behind and hold(held) is held
    HoldingsMaintainer(store.location).refresh()  # the store itself now reads a newer snapshot, lagging nothing
    doc = answers.access(held, LAGGING_SUBJECT, default_taxonomy(), datetime(2030, 1, 1, tzinfo=UTC))
    assert doc[1]["store_snapshot"] == before and doc[1]["holdings_behind"] == behind
    assert held.count() == 3  # the held state: the two events stored after it are not in it
    fresh = answers.access(store, LAGGING_SUBJECT, default_taxonomy())
    assert fresh[1]["store_snapshot"] != before and fresh[1]["holdings_behind"] == 0 and "lag" not in fresh[1]
    assert store.count() == 5 and held.count() == 3


def test_a_full_stamp_lists_every_stamp_fact_in_order() -> None:
    """A stamp with every part gives exactly ``STAMP_FACTS``, in order; an empty lag or warning adds nothing."""
    full = Stamp(7, 2, datetime(2026, 1, 1, tzinfo=UTC), "known now", ("one", "two"))
    assert tuple(full.facts()) == STAMP_FACTS and full.facts()["warning"] == "one; two"
    assert list(Stamp(7, 0).facts()) == ["store_snapshot", "holdings_behind"]
