"""A long-lived store's kept erasure certificates, and the person page's answers given from one session."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lineage import default_taxonomy
from lineage.answers import access_request, erasure_plan, person_answers
from lineage.contract.records import Record
from lineage.store import certificate
from lineage.store.certificate import DONE, STARTED, Certificate, record_certificate
from lineage.store.engine import Store
from tests.fixtures import email_collected, store_of

TAXONOMY = default_taxonomy()
AT = datetime(2026, 5, 1, tzinfo=UTC)


def _collected(subject: str, **fields: object) -> Record:
    return email_collected(subject, AT, **fields)


def _certify(store: Store, digest: str, status: str, at: datetime) -> None:
    record_certificate(store.location, [digest], case_ref="CASE-1", status=status, erased_at=at, removed=None,
                       kafka_bound="bound")  # fmt: skip


def test_a_store_kept_open_sees_each_certificate_recorded_after_its_first_look(tmp_path: Path) -> None:
    """Kept per version of the table: a later certificate, and a newer status of one, are seen by the next read."""
    store = store_of([_collected("acct-1")], tmp_path / "s")
    try:
        assert not store.pinned().certificates()  # no certificates table yet
        _certify(store, "a" * 64, STARTED, AT)
        assert {d: c.status for d, c in store.pinned().certificates().items()} == {"a" * 64: STARTED}
        _certify(store, "b" * 64, DONE, AT)
        _certify(store, "a" * 64, DONE, datetime(2026, 5, 2, tzinfo=UTC))
        kept = store.pinned().certificates()
        assert {d: c.status for d, c in kept.items()} == {"a" * 64: DONE, "b" * 64: DONE}  # a digest's newest row
        assert store.certificates() == kept  # the store itself, not a held copy, answers the same
    finally:
        store.close()


def test_a_read_held_before_a_forget_began_sees_its_certificate(tmp_path: Path) -> None:
    """The certificates are looked up now, not as of the read: a read planned before a forget still holds the person."""
    store = store_of([_collected("acct-1")], tmp_path / "s")
    try:
        before_any = store.pinned()  # before the certificates table exists
        assert not before_any.certificates()
        _certify(store, "a" * 64, STARTED, AT)
        assert set(before_any.certificates()) == {"a" * 64}
        held = store.pinned()
        _certify(store, "b" * 64, STARTED, AT)
        assert set(held.certificates()) == {"a" * 64, "b" * 64}
    finally:
        store.close()


def _counting_reads(monkeypatch: pytest.MonkeyPatch, gate: threading.Event | None = None) -> list[int]:
    """Count the whole reads of the certificates table; with ``gate``, each read waits for it first."""
    reads: list[int] = []
    read = certificate._newest_of

    def counted(location: object, version: str) -> tuple[str, Mapping[str, Certificate]]:
        reads.append(1)
        if gate is not None:
            assert gate.wait(60)
        return read(location, version)  # type: ignore[arg-type]

    monkeypatch.setattr(certificate, "_newest_of", counted)
    return reads


def test_the_certificates_are_read_once_per_version_of_their_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lookups between two forgets read the table once; the next forget's certificate makes one more read."""
    store = store_of([_collected("acct-1")], tmp_path / "s")
    try:
        _certify(store, "a" * 64, DONE, AT)
        reads = _counting_reads(monkeypatch)
        for _ in range(5):
            assert "a" * 64 in store.pinned().certificates()
        assert len(reads) == 1
        _certify(store, "b" * 64, DONE, AT)
        for _ in range(3):
            assert "b" * 64 in store.pinned().certificates()
        assert len(reads) == 2
    finally:
        store.close()


def test_lookups_arriving_together_after_a_forget_share_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight page views at once after a forget read the table once: the others wait for that read."""
    store = store_of([_collected("acct-1")], tmp_path / "s")
    try:
        _certify(store, "a" * 64, DONE, AT)
        gate = threading.Event()
        reads = _counting_reads(monkeypatch, gate)
        found: list[bool] = []
        views = [threading.Thread(target=lambda: found.append("a" * 64 in store.pinned().certificates()))
                 for _ in range(8)]  # fmt: skip
        for view in views:
            view.start()
        gate.set()
        for view in views:
            view.join(60)
        assert found == [True] * 8 and len(reads) == 1
    finally:
        store.close()


def test_a_table_too_large_to_keep_is_scanned_for_each_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past KEEP_AT_MOST rows nothing is kept, and a lookup still finds a digest's newest certificate."""
    monkeypatch.setattr(certificate, "KEEP_AT_MOST", 1)
    store = store_of([_collected("acct-1")], tmp_path / "s")
    try:
        _certify(store, "a" * 64, STARTED, AT)
        _certify(store, "a" * 64, DONE, datetime(2026, 5, 2, tzinfo=UTC))
        kept = store.pinned().certificates()
        assert not isinstance(kept, dict) and kept  # rows held, so an identifier is worth hashing
        found = kept.get("a" * 64)
        assert found is not None and found.status == DONE
        assert kept.get("b" * 64) is None and list(kept) == ["a" * 64]
    finally:
        store.close()


def test_the_person_page_answers_equal_the_access_report_and_erasure_plan_asked_apart(tmp_path: Path) -> None:
    """One session and one walk of the links give what the two answers give on their own, linked ids included."""
    store = store_of([_collected("acct-1", linked_subject_ids=["phone-1"]), _collected("phone-1"),
                      _collected("acct-2")], tmp_path / "s")  # fmt: skip
    try:
        for who in ("phone-1", "acct-2", "nobody"):
            report, plan = person_answers(store, who, TAXONOMY, AT)
            assert report == access_request(store, who, TAXONOMY, AT)
            assert plan == erasure_plan(store, who, TAXONOMY, AT)
        report, plan = person_answers(store, "phone-1", TAXONOMY, AT)
        assert report.identifiers == ["acct-1", "phone-1"] and plan.holders
    finally:
        store.close()


@pytest.mark.parametrize("keep_at_most", [100_000, 1])
def test_a_forget_begun_and_not_finished_is_seen_kept_or_scanned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_at_most: int
) -> None:
    """Unfinished while one digest's newest certificate is 'started'; not once every one is done."""
    monkeypatch.setattr(certificate, "KEEP_AT_MOST", keep_at_most)
    store = store_of([_collected("acct-1")], tmp_path / "s")
    try:
        assert not certificate.unfinished(store.certificates())
        _certify(store, "a" * 64, STARTED, AT)
        _certify(store, "a" * 64, DONE, datetime(2026, 5, 2, tzinfo=UTC))
        _certify(store, "b" * 64, STARTED, datetime(2026, 5, 3, tzinfo=UTC))
        assert certificate.unfinished(store.certificates())
        _certify(store, "b" * 64, DONE, datetime(2026, 5, 4, tzinfo=UTC))
        assert not certificate.unfinished(store.certificates())
    finally:
        store.close()


@pytest.mark.parametrize("keep_at_most", [100_000, 1])
def test_the_digests_certified_since_a_time_kept_or_scanned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_at_most: int
) -> None:
    """``made_since``: the digests whose newest certificate, of any status, was made at or after the time."""
    monkeypatch.setattr(certificate, "KEEP_AT_MOST", keep_at_most)
    store = store_of([_collected("acct-1")], tmp_path / "s")
    try:
        _certify(store, "a" * 64, DONE, AT)
        _certify(store, "b" * 64, STARTED, datetime(2026, 5, 3, tzinfo=UTC))
        _certify(store, "c" * 64, DONE, datetime(2026, 5, 1, 12, tzinfo=UTC))
        _certify(store, "c" * 64, certificate.NOTHING_HELD, datetime(2026, 5, 4, tzinfo=UTC))
        found = store.certificates()
        assert certificate.made_since(found, datetime(2026, 5, 2, tzinfo=UTC)) == {"b" * 64, "c" * 64}
        assert certificate.made_since(found, AT) == {"a" * 64, "b" * 64, "c" * 64}
        assert certificate.made_since(found, datetime(2026, 5, 5, tzinfo=UTC)) == set()
    finally:
        store.close()
