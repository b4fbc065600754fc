"""A person's rows grouped for the access report and the erasure plan (lineage/answers/person.py), in memory.

The same answers on a real store, against the reference, are in test_answers.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lineage import Party, default_taxonomy
from lineage.answers import access_request, person
from lineage.contract.records import make_record
from lineage.store import Session
from tests.fixtures import store_of

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _run(minute: int, **fields: Any) -> dict[str, Any]:
    """One arrival as ``queries/subject_holdings.sql`` gives it."""
    row: dict[str, Any] = {
        "category": "user.contact.email", "holder": "crm", "arrived_at": T0 + timedelta(minutes=minute),
        "via": f"e{minute}", "via_type": "COLLECTED", "via_bulk": False, "holder_role": "internal",
        "holder_region": "CN", "source": "direct", "source_region": None, "purpose": "essential.service",
        "legal_basis": "CONTRACT", "mechanism": None, "retention_days": None, "ended_at": None,
        "retention_ends": None,
    }  # fmt: skip
    return {**row, **fields}


def _hold(minute: int, holder: str, categories: list[str] | None, reason: str | None) -> dict[str, Any]:
    return {"event_type": "ERASED", "erasure_outcome": "HOLD", "holder": holder, "categories": categories,
            "hold_reason": reason, "occurred_at": T0 + timedelta(minutes=minute)}  # fmt: skip


def test_first_arrived_takes_the_earliest_row_and_the_smallest_value_among_ties() -> None:
    """The region of the earliest arrival, whatever the rows' order; at one instant the smallest, None last."""
    rows = [_run(5, holder_region="SG"), _run(1, holder_region="HK"), _run(1, holder_region="CN"), _run(1)]
    assert person.first_arrived(rows, "holder_region") == "CN"
    assert person.first_arrived(list(reversed(rows)), "holder_region") == "CN"
    assert person.first_arrived([_run(1, source=None), _run(1, source="web")], "source") == "web"


def test_first_copies_keep_each_event_once_the_first_stored_in_the_given_order() -> None:
    """Of a resent event's copies the smallest Kafka offset is kept (None last); the order stays as given."""
    def copy(event_id: str, offset: int | None, sent_via: str, partition: int | None = 0, origin: str = "k") -> Any:
        return {"event_id": event_id, "kafka_offset": offset, "kafka_partition": partition, "origin": origin,
                "sent_via": sent_via}  # fmt: skip

    a_spool, a_first = copy("a", 9, "spool"), copy("a", 4, "direct")
    b_none, b_kafka = copy("b", None, "gateway", None), copy("b", 12, "direct")
    c = copy("c", 1, "direct")
    assert person.first_copies([b_none, a_spool, c, a_first, b_kafka]) == [c, a_first, b_kafka]
    alone = [a_first, c]
    assert person.first_copies(alone) == alone
    # one offset in two partitions, or from two origins: the smaller partition, then origin, whatever the order
    p1, p0 = copy("d", 5, "sdk", 1), copy("d", 5, "gateway", 0)
    o2, o1 = copy("e", 5, "sdk", 0, "k2"), copy("e", 5, "gateway", 0, "k1")
    assert person.first_copies([p1, p0]) == [p0] and person.first_copies([p0, p1]) == [p0]
    assert person.first_copies([o2, o1]) == [o1] and person.first_copies([o1, o2]) == [o1]


def test_holdings_group_by_category_and_holder_with_distinct_sorted_lists() -> None:
    """Since the first arrival; purposes, bases and sources once each, sorted, without NULL; sorted by key."""
    rows = [
        _run(3, purpose="marketing.advertising", legal_basis=None),
        _run(1, source="web", retention_days=30),
        _run(2, category="user.name", holder="app"),
    ]
    found = person.holdings(rows)
    assert [(h["category"], h["holder"]) for h in found] == [("user.contact.email", "crm"), ("user.name", "app")]
    email = found[0]
    assert email["since"] == T0 + timedelta(minutes=1)
    assert email["purposes"] == ["essential.service", "marketing.advertising"]
    assert email["legal_bases"] == ["CONTRACT"] and email["sources"] == ["direct", "web"]
    assert email["retention_days"] == 30 and email["still_held"] and email["erased_at"] is None


def test_holdings_sorted_by_key_whatever_the_rows_order_with_each_value_once() -> None:
    """Holdings by (category, holder) from unsorted rows; a purpose given twice listed once; the longest retention."""
    rows = [
        _run(1, category="user.name", holder="crm", retention_days=90),
        _run(2, category="user.name", holder="app", retention_days=30),
        _run(3, category="user.name", holder="app", retention_days=365),
        _run(4, category="user.name", holder="app", retention_days=7),
        _run(5, category="user.contact.email", holder="web"),
    ]
    found = person.holdings(rows)
    assert [(h["category"], h["holder"]) for h in found] == [
        ("user.contact.email", "web"), ("user.name", "app"), ("user.name", "crm")]  # fmt: skip
    assert found[1]["purposes"] == ["essential.service"] and found[1]["retention_days"] == 365


def test_holdings_erased_when_every_arrival_ended_and_retention_only_of_what_is_held() -> None:
    """Erased at the last end once nothing is held; the retention end is the latest of the still-held arrivals."""
    end = T0 + timedelta(days=1)
    erased = person.holdings([_run(1, ended_at=end), _run(2, ended_at=end - timedelta(hours=1))])[0]
    assert not erased["still_held"] and erased["erased_at"] == end and erased["retention_ends"] is None
    due = T0 + timedelta(days=40)
    held = person.holdings([_run(1, retention_ends=due), _run(2, ended_at=end, retention_ends=None),
                            _run(3, retention_ends=due - timedelta(days=9))])[0]  # fmt: skip
    assert held["still_held"] and held["erased_at"] is None and held["retention_ends"] == due


def test_recipients_only_shares_and_transfers_by_recipient_and_sender() -> None:
    """Collections are not disclosures; two senders to one recipient at one instant: by sender, None last."""
    rows = [
        _run(1),  # collected: not a recipient
        _run(2, holder="pay", via_type="SHARED", source=None, via_bulk=None),
        _run(2, holder="pay", via_type="SHARED", source="app", mechanism="dpa"),
        _run(4, holder="pay", via_type="TRANSFERRED", source="app", via_bulk=True, category="user.name"),
    ]
    found = person.recipients(rows)
    assert [(r["recipient"], r["sender"]) for r in found] == [("pay", "app"), ("pay", None)]
    app = found[0]
    assert app["categories"] == ["user.contact.email", "user.name"] and app["mechanisms"] == ["dpa"]
    assert app["event_types"] == ["SHARED", "TRANSFERRED"] and app["in_bulk_export"] is True
    assert (app["first_at"], app["last_at"]) == (T0 + timedelta(minutes=2), T0 + timedelta(minutes=4))
    assert found[1]["in_bulk_export"] is None  # as SQL's bool_or of nothing known


@pytest.mark.parametrize(
    ("held", "status"),
    [(["user.contact.email"], "on hold"), (["user.contact"], "on hold"), (["user.name"], "pending"), ([], "pending")],
)
def test_holders_on_hold_only_when_the_holds_cover_all_still_held(held: list[str], status: str) -> None:
    """A holder keeping data is on hold when its HOLD events cover every category it still holds."""
    rows = [_run(1), _run(2, category="user.contact.phone_number", ended_at=T0 + timedelta(days=2))]
    found = person.holders(rows, [_hold(3, "crm", held, "tax law")])[0]
    assert found["status"] == status and found["still_held"] == ["user.contact.email"]
    assert found["categories"] == ["user.contact.email", "user.contact.phone_number"]
    assert found["hold_reason"] == ("tax law" if status == "on hold" else None)


def test_holders_done_and_hold_reasons_in_event_order_once_each() -> None:
    """A holder with nothing left is done, hold or not; reasons are joined in the order the holds came."""
    end = T0 + timedelta(days=1)
    events = [_hold(4, "crm", ["user"], "audit"), _hold(5, "crm", None, None), _hold(6, "crm", ["user"], "tax law"),
              _hold(7, "crm", ["user"], "audit"), _hold(8, "app", ["user"], "other")]  # fmt: skip
    found = person.holders([_run(1), _run(2, holder="app", ended_at=end)], events)
    assert [(h["holder"], h["status"]) for h in found] == [("app", "done"), ("crm", "on hold")]
    assert found[0]["hold_reason"] is None and found[0]["last_erased_at"] == end
    assert found[1]["hold_reason"] == "audit; tax law"
    later_first = [_hold(4, "crm", ["user"], "tax law"), _hold(5, "crm", ["user"], "audit")]
    assert person.holders([_run(1)], later_first)[0]["hold_reason"] == "tax law; audit"


def test_holders_on_hold_when_several_holds_together_cover_what_is_held() -> None:
    """Each HOLD names some categories; together they cover all still held, so the holder is on hold."""
    rows = [_run(1), _run(2, category="user.name")]
    split = [_hold(3, "crm", ["user.contact.email"], "tax law"), _hold(4, "crm", ["user.name"], "audit")]
    found = person.holders(rows, split)[0]
    assert found["status"] == "on hold" and found["hold_reason"] == "tax law; audit"
    assert person.holders(rows, split[:1])[0]["status"] == "pending"


def test_holders_last_erased_at_counts_a_holder_still_holding_something() -> None:
    """A holder that erased one category but still holds another: pending, erased last at that erasure."""
    end = T0 + timedelta(days=1)
    found = person.holders([_run(1), _run(2, category="user.name", ended_at=end)], [])[0]
    assert found["status"] == "pending" and found["still_held"] == ["user.contact.email"]
    assert found["last_erased_at"] == end


def test_an_access_report_asks_for_bulk_sources_only_when_a_holding_came_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Data that came by the person's own events alone costs no bulk lookup; a share's source names its recipient."""
    collected = make_record("COLLECTED", system="web", system_region="CN", subject_id="u1",
                            categories=["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT",
                            occurred_at=T0)  # fmt: skip
    pay = Party(name="pay", role="processor", region="CN")
    shared = make_record("SHARED", system="web", system_region="CN", subject_id="u1", recipient=pay,
                         categories=["user.contact.email"], purpose="essential.service",
                         occurred_at=T0 + timedelta(minutes=1))  # fmt: skip
    store = store_of([collected, shared], tmp_path / "store")
    asked: list[str] = []
    lookup = Session.lookup

    def counted(self: Session, query: Any, params: Any = None) -> list[dict[str, Any]]:
        asked.append(query)
        return lookup(self, query, params)

    monkeypatch.setattr(Session, "lookup", counted)
    report = access_request(store, "u1", default_taxonomy(), T0 + timedelta(days=1))
    assert "access_sources" not in asked and "subject_events" in asked and report.holdings
    assert [(s["event_id"], s["holder"]) for s in report.sources] == [
        (collected["event_id"], "web"), (shared["event_id"], "pay")]  # fmt: skip
