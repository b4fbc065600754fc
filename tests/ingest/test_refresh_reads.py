"""A refresh reads each events snapshot on one connection (``Store.scan``), and leaves nothing of it behind."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation
from lineage.store.file_bounds import SourceOffsets
from tests.ingest.test_holdback import TAXONOMY, _collected, _held_back, _holdings, _rebuilt, _store


def _opens(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """Record the events snapshot of each connection a ``Store`` opens from now on."""
    opened: list[int | None] = []
    real = Store._open  # noqa: SLF001 - what is counted

    def counted(self: Store, *args: object) -> object:
        opened.append(self.snapshot if isinstance(self.snapshot, int) else None)
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "_open", counted)
    return opened


def test_a_refresh_holding_back_reads_its_snapshot_on_one_connection_and_removes_its_spill_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bounds and the new events of one snapshot: one connection, not one each; no sort folder is left."""
    location = StoreLocation.embedded(tmp_path / "store")
    ingestor, offsets = Ingestor(location, "events", taxonomy=TAXONOMY), {}
    _store(ingestor, {0: [_collected(f"a{m}", m) for m in range(10, 21)],
                      1: [_collected(f"b{m}", m) for m in range(10, 16)]}, offsets)  # fmt: skip
    spills = tmp_path / "tmp"
    spills.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spills))
    opened = _opens(monkeypatch)
    maintainer = HoldingsMaintainer(location)
    maintainer.holdback = True
    assert maintainer.refresh().held == 7
    assert len(opened) == 1 and opened[0] is not None
    assert list(spills.iterdir()) == []


def test_a_replay_from_the_store_starts_while_the_read_that_met_the_late_event_is_open(tmp_path: Path) -> None:
    """No applied event kept in memory: the replay reads the store on the same connection; holdings equal a rebuild."""
    location = StoreLocation.embedded(tmp_path)
    ingestor, offsets = Ingestor(location, "events", taxonomy=TAXONOMY), {}
    _store(ingestor, {0: [_collected(f"a{m}", m) for m in range(10, 21)]}, offsets)
    maintainer = HoldingsMaintainer(location)
    maintainer.recent_events = 0  # a replay reads the store
    assert maintainer.refresh().events == 11
    _store(ingestor, {0: [_collected("late", 12), _collected("next", 22)]}, offsets)
    done = maintainer.refresh()
    assert done.rolled_back_to is not None and done.events == 11
    assert _holdings(location) == _rebuilt(location)


def test_a_scan_of_a_reader_cut_to_held_back_holdings_keeps_no_file_offsets(tmp_path: Path) -> None:
    """Offsets learnt under a cut would be too low for an uncut scan sharing them: a cut scan learns none."""
    location, _, _, _ = _held_back(tmp_path)
    offsets: dict[str, SourceOffsets] = {}
    with Store(location).scan(offsets) as scan:  # a reader: the events cut to the holdings' offsets
        scan.holdback({"events": {0: 0, 1: 0}}, floor=None)
    assert offsets == {}
    with Store(location, holdings=False).scan(offsets) as scan:
        assert len(list(scan.events({"events": {0: 4, 1: 4}}, None, floor=None))) == 7  # those held back
    assert offsets
