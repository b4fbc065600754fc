"""Store retention under review (issue 22 item 5): late events, named snapshots, consents and bounds after ``retain``.

Each test is a case an adversarial review found answered wrongly by the first version of retention.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from lineage import Codec
from lineage.answers import access_request
from lineage.answers.policy_check import check
from lineage.contract.policy import load_policy
from lineage.errors import StoreError
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation
from lineage.store.holdings import HOLDINGS
from lineage.store.maintenance import expire
from lineage.store.retention import retire_events
from tests.answers.test_policy import POLICY, _history
from tests.fixtures import HISTORY_T0, one_line_failure, run_cli, store_of
from tests.store.test_forget import SIZE, TAXONOMY, _store, _world
from tests.store.test_retention import CUTOFF, _micros


def _send_late(location: StoreLocation, values: tuple[bytes, ...], late: list[tuple[str, int]]) -> None:
    """Store one COLLECTED event per (subject, occurred_at µs), each in its own commit, the holdings refreshed."""
    codec = Codec()
    first = next(r for r in map(codec.decode_record, values) if r["event_type"] == "COLLECTED")
    ingestor = Ingestor(location, "late", taxonomy=TAXONOMY)
    for offset, (subject, at) in enumerate(late):
        record = first | {"event_id": str(uuid.uuid4()), "subject_id": subject, "linked_subject_ids": [],
                          "occurred_at": at}  # fmt: skip
        assert ingestor.add(0, offset, codec.encode_record(record)) is None
        ingestor.flush()
        HoldingsMaintainer(location).refresh()


def test_a_late_event_older_than_the_cut_off_still_shows_who_holds_the_data(tmp_path: Path) -> None:
    """A COLLECTED event from before the cut-off arriving after retain: its holder is listed as holding the data."""
    values, _, _ = _world()
    location = _store(tmp_path / "store", values)
    retire_events(location, CUTOFF, refresh_holdings=HoldingsMaintainer(location).refresh, grace_s=0)
    _send_late(location, values, [("late-1", _micros(CUTOFF - timedelta(days=10)))])
    store = Store(location)
    try:
        report = access_request(store, "late-1", TAXONOMY, SIZE.end)
        stored = store.sql("SELECT count(*) AS n FROM events WHERE subject_id = $who", {"who": "late-1"})
    finally:
        store.close()
    assert stored == [{"n": 1}], "the event is stored"
    assert report.holdings, "yet its holder is not listed as holding the person's data"


def test_two_late_events_older_than_the_cut_off_are_treated_alike(tmp_path: Path) -> None:
    """Two late events both older than the cut-off (one newer than every stored event, one not): the same fate."""
    values, _, _ = _world()
    location = _store(tmp_path / "store", values)
    cutoff = SIZE.end + timedelta(days=2)  # every event retired: the holdings' watermark is SIZE.end
    retire_events(location, cutoff, refresh_holdings=HoldingsMaintainer(location).refresh, grace_s=0)
    _send_late(location, values, [("late-a", _micros(SIZE.end + timedelta(days=1))), ("late-b", _micros(CUTOFF))])
    store = Store(location)
    try:
        held = {who: bool(access_request(store, who, TAXONOMY, cutoff).holdings) for who in ("late-a", "late-b")}
    finally:
        store.close()
    assert held["late-a"] == held["late-b"], held  # as merged: late-a held, late-b not


def test_an_answer_from_a_named_snapshot_after_retention_keeps_the_retired_holdings(tmp_path: Path) -> None:
    """``--snapshot`` naming an events snapshot the holdings do not reflect yet: the retired events' holdings show."""
    values, _, _ = _world()
    location = _store(tmp_path / "store", values)
    retire_events(location, CUTOFF, refresh_holdings=HoldingsMaintainer(location).refresh, grace_s=0)
    query = "SELECT count(*) AS n FROM holding_runs WHERE arrived_at < $cutoff"
    before = Store(location).sql(query, {"cutoff": CUTOFF})
    codec = Codec()
    first = next(r for r in map(codec.decode_record, values) if r["event_type"] == "COLLECTED")
    newer = first | {"event_id": str(uuid.uuid4()), "subject_id": "new-1", "linked_subject_ids": [],
                     "occurred_at": _micros(SIZE.end)}  # fmt: skip
    ingestor = Ingestor(location, "more", taxonomy=TAXONOMY)
    assert ingestor.add(0, 0, codec.encode_record(newer)) is None
    ingestor.flush()  # a consumer's commit that the holdings maintainer has not reflected yet
    current = location.load().current_snapshot()
    assert current is not None
    after = Store(location, snapshot=str(current.snapshot_id)).sql(query, {"cutoff": CUTOFF})
    assert before[0]["n"] > 0 and after == before  # as merged: 346 runs, then 0


def test_the_policy_check_after_retention_still_sees_the_consent_given_before_the_cut_off(tmp_path: Path) -> None:
    """A use after the cut-off, consented to before it, is not reported as "without a prior granted consent"."""
    (tmp_path / "mochat.toml").write_text(POLICY)
    policy = load_policy(tmp_path / "mochat.toml", TAXONOMY)
    records, _ = _history()  # consent of "a" on day 5, its use on day 6 (event ...0a), "b" never consented
    folder = tmp_path / "store"
    now = HISTORY_T0 + timedelta(days=200)

    def consent_breaches() -> set[str]:
        return {v.event_id[-2:] for v in check(Store(folder), policy, now=now) if v.clause == "consent"}

    store_of(records, folder)
    assert consent_breaches() == {"0b"}
    location = StoreLocation.embedded(folder)
    retire_events(location, HISTORY_T0 + timedelta(days=5, hours=12),
                  refresh_holdings=HoldingsMaintainer(location).refresh, grace_s=0)  # fmt: skip
    assert consent_breaches() == {"0b"}  # as merged: {"0a", "0b"}


def test_a_period_reaching_before_year_one_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--older-than 1000000`` (before year 1): one line naming --older-than, exit 2, not an internal error."""
    code, _, err = run_cli(capsys, "retain", "--older-than", "1000000", "--store", str(tmp_path / "none"))
    assert "--older-than" in one_line_failure(code, err)


def test_a_named_snapshot_older_than_the_stored_holdings_after_retention_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    """After retain, pinning an events snapshot no kept holdings reflect or precede: one line naming the fix."""
    values, _, _ = _world()
    location = _store(tmp_path / "store", values)
    retire_events(location, CUTOFF, refresh_holdings=HoldingsMaintainer(location).refresh, grace_s=0)
    older = location.load().current_snapshot()
    assert older is not None
    _send_late(location, values, [("new-1", _micros(SIZE.end))])  # the holdings now reflect a newer snapshot
    expire(location, older_than_s=0, table=HOLDINGS)  # and no longer keep the ones made from ``older``
    with pytest.raises(StoreError) as refused:
        Store(location, snapshot=str(older.snapshot_id)).sql("SELECT count(*) AS n FROM holding_runs")
    assert "run `lineage holdings`" in str(refused.value) and "\n" not in str(refused.value)
