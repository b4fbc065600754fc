"""The erasure certificates read from their files (fastavro, Parquet): what pyiceberg reads, without importing it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lineage.store import Store, StoreLocation, certificate, manifests
from lineage.store.certificate import DONE, STARTED, record_certificate
from lineage.store.tables import ERASURES
from tests.fixtures import access_processes, email_collected, store_of

AT = datetime(2026, 5, 1, tzinfo=UTC)


def _certified(folder: Path, n: int) -> StoreLocation:
    """A store of one person, with ``n`` certificates recorded one commit each (started, then done)."""
    store_of([email_collected("acct-1", AT)], folder)
    location = StoreLocation.embedded(folder)
    for i in range(n):
        record_certificate(location, [f"{i:064x}"], case_ref=f"C-{i}", status=STARTED if i % 2 else DONE,
                           erased_at=AT + timedelta(hours=i), removed=None, kafka_bound="bound")  # fmt: skip
    return location


def _version(location: StoreLocation) -> str:
    return dict(location.versions())[ERASURES]


def _planned(location: StoreLocation) -> list[tuple[str, int]]:
    """What pyiceberg plans: each live file's local path and rows."""
    table = location.load_table(ERASURES, certificate.iceberg_schema(certificate._COLUMNS), *_unsorted())
    return sorted((t.file.file_path.removeprefix("file://"), t.file.record_count) for t in table.scan().plan_files())


def _unsorted() -> tuple[object, dict[str, str]]:
    from pyiceberg.table.sorting import UNSORTED_SORT_ORDER

    return UNSORTED_SORT_ORDER, {}


def test_the_live_files_are_those_pyiceberg_plans(tmp_path: Path) -> None:
    """Several appends, then a delete that rewrites a file (its entry marked deleted): the same files and rows."""
    location = _certified(tmp_path / "s", 4)
    found = manifests.live_files(_version(location))
    assert found is not None and len(found) == 4
    assert sorted((f.path, f.rows) for f in found) == _planned(location)
    from pyiceberg.expressions import EqualTo

    table = location.load_table(ERASURES, certificate.iceberg_schema(certificate._COLUMNS), *_unsorted())
    table.delete(EqualTo("case_ref", "C-1"))
    found = manifests.live_files(_version(location))
    assert found is not None and sorted((f.path, f.rows) for f in found) == _planned(location)
    assert len(found) == 3


def test_the_certificates_read_from_files_equal_pyiceberg_s_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each digest's newest certificate is the same read either way."""
    location = _certified(tmp_path / "s", 5)
    version = _version(location)
    light = certificate._newest_of(location, version)
    monkeypatch.setattr(manifests, "live_files", lambda _: None)
    assert dict(light[1]) == dict(certificate._newest_of(location, version)[1]) and len(light[1]) == 5


@pytest.mark.parametrize("where", ["s3://bucket/wh/t/metadata/00001.metadata.json", "/nowhere/00001.metadata.json"])
def test_a_table_not_on_this_disk_is_left_to_pyiceberg(where: str) -> None:
    """An object-store location, or a metadata file that is gone: None (pyiceberg plans it, or names the fault)."""
    assert manifests.live_files(where) is None


def test_a_damaged_manifest_is_left_to_pyiceberg(tmp_path: Path) -> None:
    """A manifest list cut short: None, and reading the certificates then reports the store's fault in one line."""
    location = _certified(tmp_path / "s", 1)
    version = _version(location)
    listed = json.loads(Path(version.removeprefix("file://")).read_text())["snapshots"][-1]["manifest-list"]
    path = Path(listed.removeprefix("file://"))
    path.write_bytes(path.read_bytes()[:40])
    assert manifests.live_files(version) is None


def test_a_table_with_no_snapshot_has_no_live_file(tmp_path: Path) -> None:
    """A metadata file naming no current snapshot: no file (nobody was forgotten yet)."""
    metadata = tmp_path / "00000.metadata.json"
    metadata.write_text(json.dumps({"format-version": 2, "current-snapshot-id": None, "snapshots": []}))
    assert manifests.live_files(f"file://{metadata}") == []


def test_a_second_access_process_after_a_forget_imports_neither_pyiceberg_nor_sqlalchemy(tmp_path: Path) -> None:
    """With plans kept, the certificates read from their files and the key with sqlite3: no pyiceberg, no SQLAlchemy."""
    from lineage.cli import main

    store_of([email_collected("acct-1", AT), email_collected("acct-2", AT)], tmp_path / "store").close()
    assert main(["forget", "acct-1", "--case", "C-9", "--store", str(tmp_path / "store"), "--grace", "0"]) == 0
    (first, first_heavy), (second, second_heavy) = access_processes(tmp_path / "store", "acct-1")
    assert "pyiceberg" in first_heavy and second_heavy == []
    assert first == second and "C-9" in second["erased"] and second["holds_data"] is False
    assert Store(tmp_path / "store").certificates()
