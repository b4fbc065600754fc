"""The holdings table over time: copies are expired, readers keep their pairing, no-op refreshes write no rows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from lineage import default_taxonomy
from lineage.answers import access_request
from lineage.contract.records import make_record
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation
from lineage.store.holdings import load_holdings, read_state
from lineage.store.maintenance import compact
from lineage.store.snapshots import snapshot_files
from tests.fixtures import PARTY, T0

TAX = default_taxonomy()


def _collect(minute: int, subject: str) -> dict[str, object]:
    return make_record("COLLECTED", system="app", system_region="CN", occurred_at=T0 + timedelta(minutes=minute),
                       holder=PARTY["app"], subject_id=subject, categories=["user.contact.email"],
                       purpose="essential.service", legal_basis="CONTRACT")  # fmt: skip


def _consent(minute: int, subject: str) -> dict[str, object]:
    return make_record("CONSENT", system="app", system_region="CN", occurred_at=T0 + timedelta(minutes=minute),
                       holder=PARTY["app"], subject_id=subject, categories=["user.contact.email"],
                       purpose="essential.service", consent_status="GRANTED", consent_kind="GENERAL")  # fmt: skip


def _ingest(folder: Path, records: list[dict[str, object]], first: int) -> None:
    ing = Ingestor(folder, "events", taxonomy=TAX)
    for offset, record in enumerate(records, start=first):
        assert ing.add_record(0, offset, record) is None  # type: ignore[arg-type]
    ing.flush()


def test_compaction_expires_old_holdings_copies_but_keeps_what_readers_pin(tmp_path: Path) -> None:
    """Ten refreshes leave ten copies; compact expires the replaced ones and their files, answers still exact."""
    location = StoreLocation.embedded(tmp_path)
    maintainer = HoldingsMaintainer(location)
    for i in range(10):
        _ingest(tmp_path, [_collect(i, f"s{i}")], first=i)
        maintainer.refresh()
    holdings = load_holdings(location)
    assert len(holdings.metadata.snapshots) >= 10
    compact(location, expire_after_s=0, grace_s=0)
    holdings = load_holdings(location)
    assert len(holdings.metadata.snapshots) == 1
    snapshot = holdings.current_snapshot()
    assert snapshot is not None
    files = {str(f) for f in (tmp_path / "warehouse").rglob("holdings/data/**/*.parquet")}
    assert files == set(snapshot_files(location, holdings, snapshot.snapshot_id)[0]), files  # one copy: the live one
    _ingest(tmp_path, [_collect(30, "late-comer")], first=10)  # after the compaction: the maintainer lags
    store = Store(tmp_path)
    report = access_request(store, "s3", TAX, as_of=T0 + timedelta(hours=1))
    assert [h["holder"] for h in report.holdings] == ["app"] and store.behind == 1


def test_events_that_change_no_holding_move_the_offsets_without_a_copy(tmp_path: Path) -> None:
    """Consents only: the holdings keep their snapshot, record the new offsets, and readers see the consents."""
    location = StoreLocation.embedded(tmp_path)
    maintainer = HoldingsMaintainer(location)
    _ingest(tmp_path, [_collect(0, "s1")], first=0)
    first = maintainer.refresh()
    _ingest(tmp_path, [_consent(5, "s1")], first=1)
    second = maintainer.refresh()
    state = read_state(load_holdings(location))
    assert second.snapshot == first.snapshot == state.snapshot_id and state.source == second.source != first.source
    store = Store(tmp_path)
    report = access_request(store, "s1", TAX, as_of=T0 + timedelta(hours=1))
    assert len(report.consents) == 1 and store.behind == 0
