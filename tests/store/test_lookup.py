"""``Session.lookup``: a person's few rows fetched without Arrow, equal to ``Session.rows``' on a real store."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from lineage.errors import StoreError
from lineage.store import Session
from lineage.store.holdings import buckets_of
from tests.store.test_readers import SIZE, _world_store


def _person_queries(q: Session, subject: str) -> list[tuple[Any, dict[str, Any]]]:
    """The lookups of one person's page, with the parameters the answers bind."""
    ids = [subject]
    queries: list[tuple[Any, dict[str, Any]]] = [
        ("person_of", {"id": subject, "files": q.identity_files_of(ids)}),
        ("person_links", {"person": subject, "files": q.identity_files_of(ids)}),
        ("subject_holdings", {"ids": ids, "as_of": SIZE.end, "buckets": buckets_of(ids),
                              "files": q.holdings_files_of(ids)}),
        ("subject_events", {"ids": ids, "as_of": SIZE.end, "files": q.event_files_of(ids)}),
    ]  # fmt: skip
    vias = sorted({r["via"] for r in q.rows("subject_holdings", queries[2][1])})
    queries.append(("access_sources", {"as_of": SIZE.end, "vias": vias, "files": q.bulk_event_files()}))
    return queries


def test_lookup_gives_the_rows_of_rows_with_times_in_utc(tmp_path: Path) -> None:
    """Each person query's rows by lookup equal those through Arrow, value for value, zoned times in UTC."""
    store, _ = _world_store(tmp_path / "store")
    subjects = [r["subject_id"] for r in store.sql(
        "SELECT DISTINCT subject_id FROM events WHERE subject_id IS NOT NULL ORDER BY 1 LIMIT 6")]  # fmt: skip
    seen: dict[str, int] = {}
    with store.session() as q:
        for subject in [*subjects, "nobody"]:
            for name, params in _person_queries(q, subject):
                # in any order (access_sources and subject_holdings have none): the answers sort them
                quick, arrow = sorted(q.lookup(name, params), key=repr), sorted(q.rows(name, params), key=repr)
                assert quick == arrow, name
                seen[name] = seen.get(name, 0) + len(quick)
                for row, other in zip(quick, arrow, strict=True):
                    assert list(row) == list(other), name  # the same columns, in order
                    times = [v for v in row.values() if hasattr(v, "tzinfo") and v.tzinfo is not None]
                    assert all(t.tzinfo is UTC for t in times), name
    assert seen["subject_holdings"] and seen["subject_events"] and seen["access_sources"], seen


def test_a_failing_lookup_names_its_query(tmp_path: Path) -> None:
    """A lookup DuckDB refuses raises StoreError naming the query, not a raw DuckDB error."""
    store, _ = _world_store(tmp_path / "store")
    with store.session() as q, pytest.raises(StoreError, match="query person_of failed") as raised:
        q.lookup("person_of", {"id": "u1"})  # $files left unbound
    assert raised.value.query == "person_of"
