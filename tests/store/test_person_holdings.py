"""A person's holdings read by row group and expanded in Python equal ``subject_holdings.sql``'s rows."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lineage.store.holdings as holdings_module
from lineage import Codec, default_taxonomy
from lineage.contract.records import Record
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.store import Session, Store, StoreLocation
from lineage.store.layout import buckets_of
from tests.fixtures import SUBJECTS, at_minute, email_collected, examples, histories

IDS = [*SUBJECTS, "dev-1", "mail-1", "nobody"]


def _stored(folder: Path, batches: list[list[Record]]) -> Store:
    """A store of ``batches`` ingested in turn, the holdings refreshed after each (so later ones arrive late)."""
    ing = Ingestor(folder, "events", taxonomy=default_taxonomy())
    codec, offset = Codec(), 0
    for batch in filter(None, batches):
        for r in batch:
            assert ing.add(0, offset, codec.encode_record(r), None, ()) is None
            offset += 1
        ing.flush()
        HoldingsMaintainer(StoreLocation.embedded(folder)).refresh()
    return Store(folder)


def _key(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(sorted((k, repr(v)) for k, v in row.items()))


def _same_rows(q: Session, ids: list[str], as_of: datetime) -> list[dict[str, Any]]:
    """The point-read rows, after checking they equal the query's (as a multiset: neither has an order)."""
    params = {"ids": ids, "as_of": as_of, "buckets": buckets_of(ids), "files": q.holdings_files_of(ids)}
    by_query = q.lookup("subject_holdings", params)
    by_points = q.subject_holdings(ids, as_of)
    assert sorted(by_points, key=_key) == sorted(by_query, key=_key)
    return by_points


@settings(max_examples=examples(40), deadline=None)
@given(histories(), st.integers(0, 14), st.integers(0, 35), st.sampled_from([None, 1, 2, 3]))
def test_point_read_holdings_equal_the_querys_rows(
    records: list[Record], split: int, as_of_minute: int, group: int | None
) -> None:
    """Random histories (bulk flows, erasures, links) in two refreshes, groups of any size: any identifiers, as-of."""
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        if group is not None:  # many row groups: a key's rows across several, read by the second pass
            patch.setattr(holdings_module, "ROW_GROUP", group)
            patch.setattr(holdings_module, "IDENTITY_ROW_GROUP", group)
        store = _stored(Path(folder), [records[:split], records[split:]])
        with store.session() as q:
            assert q._points is not None  # the local store's lookups take the point reads
            for ids in [[i] for i in IDS] + [SUBJECTS, ["s1", "s1", "dev-1"]]:
                _same_rows(q, ids, at_minute(as_of_minute))


def test_a_late_event_resets_a_persons_runs_and_the_point_read_drops_the_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person's runs made again after a late event are read once: the reset drops those written before."""
    monkeypatch.setattr(holdings_module, "MAX_FILES", 99)  # deltas, not a fold: the old runs stay stored
    store = _stored(tmp_path, [[email_collected("s1", at_minute(10))], [email_collected("s1", at_minute(5))]])
    with store.session() as q:
        assert q._bounds.resets  # the late event wrote a reset
        rows = _same_rows(q, ["s1"], at_minute(30))
        stored = q._point_rows(q.holdings_files_of(["s1"]) or [], {"subject": "s1", "kind": "run"}, ["arrived_at"])
    assert sorted(r["arrived_at"] for r in rows) == [at_minute(5), at_minute(10)]
    assert len(stored) > len(rows)  # the runs written before the late event are stored still, and dropped
