"""A long-lived store's kept erasure certificates, and the person page's answers given from one session."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from lineage import default_taxonomy
from lineage.answers import access_request, erasure_plan, person_answers
from lineage.contract.records import Record
from lineage.store.certificate import DONE, STARTED, record_certificate
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
