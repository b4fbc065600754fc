"""``Session.lookup``: a person's few rows fetched without Arrow, equal to ``Session.rows``' on a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lineage.contract.records import make_record
from lineage.errors import StoreCorruptError, StoreError
from lineage.store import Session
from lineage.store.tables import buckets_of
from tests.fixtures import store_of
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


def test_lookup_gives_the_identity_rows_of_rows_for_linked_identifiers(tmp_path: Path) -> None:
    """A person's key and links (with when each was declared) by lookup equal those through Arrow."""
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    records = [
        make_record("COLLECTED", system="app", system_region="CN", subject_id=subject, linked_subject_ids=links,
                    categories=["user.device.device_id"], purpose="essential.service", legal_basis="CONTRACT",
                    occurred_at=t0 + timedelta(days=day))
        for day, (subject, links) in enumerate([("u1", ["dev-1"]), ("dev-1", ["mail-1"]), ("u2", [])])
    ]  # fmt: skip
    store = store_of(records, tmp_path / "store")
    with store.session() as q:
        key = q.lookup("person_of", {"id": "dev-1", "files": q.identity_files_of(["dev-1"])})
        assert key == q.rows("person_of", {"id": "dev-1", "files": q.identity_files_of(["dev-1"])}) and len(key) == 1
        person = key[0]["person"]
        params = {"person": person, "files": q.identity_files_of([person])}
        links = sorted(q.lookup("person_links", params), key=repr)
        assert links == sorted(q.rows("person_links", params), key=repr) and len(links) == 2
        assert {link["declared_at"] for link in links} == {t0, t0 + timedelta(days=1)}
        assert all(link["declared_at"].tzinfo is UTC for link in links)
        assert q.lookup("person_of", {"id": "u2", "files": q.identity_files_of(["u2"])}) == []


def test_a_failing_lookup_names_its_query(tmp_path: Path) -> None:
    """A lookup DuckDB refuses raises StoreError naming the query, not a raw DuckDB error."""
    store, _ = _world_store(tmp_path / "store")
    with store.session() as q, pytest.raises(StoreError, match="query person_of failed") as raised:
        q.lookup("person_of", {"id": "u1"})  # $files left unbound
    assert raised.value.query == "person_of"


def test_a_file_damaged_under_an_open_session_fails_a_lookup_naming_it(tmp_path: Path) -> None:
    """A data file garbled after the session read its footer: the lookup is StoreCorruptError naming that file."""
    store, _ = _world_store(tmp_path / "store")
    (subject,) = [r["subject_id"] for r in store.sql(
        "SELECT subject_id FROM events WHERE subject_id IS NOT NULL ORDER BY 1 LIMIT 1")]  # fmt: skip
    with store.session() as q:
        params = {"ids": [subject], "as_of": SIZE.end, "files": q.event_files_of([subject])}
        assert q.lookup("subject_events", params)
        (victim,) = [Path(f) for f in params["files"] or []]
        victim.write_bytes(b"\0" * victim.stat().st_size)  # same size: only the pages are wrong to a cached footer
        with pytest.raises(StoreCorruptError, match=victim.name):
            q.lookup("subject_events", params)
