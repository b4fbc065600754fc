"""A catalog copied or restored apart from its warehouse names its files: writing or deleting through it is refused."""

from __future__ import annotations

import json
import os
import shutil
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from lineage.codec.avro import Codec
from lineage.contract.taxonomy import default_taxonomy
from lineage.errors import StoreClaimedError, StoreError
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.settings import Settings
from lineage.store import Store, StoreLocation
from lineage.store.claim import CLAIM_FILE, claim_path
from lineage.store.holdings import fold_buckets, load_holdings
from lineage.store.maintenance import remove_orphans
from tests.fixtures import email_collected, one_line_failure, run_cli
from tests.services import Postgres, SeaweedS3
from tests.store.conftest import CatalogDatabase, create_database

AT = datetime(2026, 5, 1, tzinfo=UTC)
CODEC = Codec()


@pytest.fixture(autouse=True)
def _claims_read_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every check reads the claim (a process trusts one it found for a minute): these tests change it."""
    monkeypatch.setattr("lineage.store.claim.RECHECK_S", 0.0)


def _files(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` and its size."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def _write(location: StoreLocation, subject: str, offset: int) -> None:
    """One event stored through ``location`` by the real ingest pipeline."""
    ingestor = Ingestor(location, "events", taxonomy=default_taxonomy())
    ingestor.add(0, offset, CODEC.encode_record(email_collected(subject, AT + timedelta(days=offset))))
    ingestor.flush()


@pytest.fixture
def apart(tmp_path: Path) -> tuple[StoreLocation, StoreLocation, Path]:
    """An embedded catalog whose warehouse lies elsewhere, and its catalog folder copied (same warehouse)."""
    warehouse = tmp_path / "warehouse"
    original = StoreLocation.from_settings(Settings(warehouse=str(warehouse)), tmp_path / "original")
    for i in range(3):
        _write(original, f"s{i}", i)
    HoldingsMaintainer(original).refresh()
    shutil.copytree(tmp_path / "original", tmp_path / "copy")
    copy = StoreLocation.from_settings(Settings(warehouse=str(warehouse)), tmp_path / "copy")
    return original, copy, warehouse


def test_the_first_writer_claims_the_warehouse_in_a_private_file(
    apart: tuple[StoreLocation, StoreLocation, Path],
) -> None:
    """The claim names the catalog file's real path, beside the tables' folders, mode 0600."""
    original, _, warehouse = apart
    claim = Path(claim_path(original))
    assert claim.parent == warehouse / "lineage" and claim.name == CLAIM_FILE
    assert json.loads(claim.read_text())["catalog"] == f"sqlite:{os.path.realpath(original.root / 'catalog.db')}"
    assert stat.S_IMODE(claim.stat().st_mode) == 0o600


def test_a_writer_through_a_copied_catalog_is_refused_before_it_writes(
    apart: tuple[StoreLocation, StoreLocation, Path],
) -> None:
    """An ingest through the copy raises StoreClaimedError naming --store; no file lands in the warehouse."""
    _, copy, warehouse = apart
    before = _files(warehouse)
    with pytest.raises(StoreClaimedError, match="--store: .* is not the catalog its warehouse belongs to"):
        _write(copy, "s9", 9)
    assert _files(warehouse) == before


def test_compact_and_forget_through_a_copied_catalog_change_nothing(
    apart: tuple[StoreLocation, StoreLocation, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """`lineage compact` and `forget` through the copy: exit 2, one line naming `lineage claim`, no file gone."""
    original, copy, warehouse = apart
    before = _files(warehouse)
    store = ["--store", str(copy.root), "--warehouse", str(warehouse)]
    for argv in (["compact", *store], ["forget", "s1", "--case", "C-1", "--grace", "0", *store]):
        line = one_line_failure(*run_cli(capsys, *argv)[::2])
        assert "lineage claim" in line and "s1" not in line, line
    assert _files(warehouse) == before
    assert Store(original).count() == 3


def test_a_holdings_refresh_and_a_pin_through_a_copied_catalog_change_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Events the holdings lag behind, copied apart: the copy's refresh, fold and `snapshots --pin` are refused."""
    warehouse = tmp_path / "warehouse"
    original = StoreLocation.from_settings(Settings(warehouse=str(warehouse)), tmp_path / "original")
    _write(original, "s0", 0)
    HoldingsMaintainer(original).refresh()
    _write(original, "s1", 1)  # not yet in the holdings
    shutil.copytree(tmp_path / "original", tmp_path / "copy")
    copy = StoreLocation.from_settings(Settings(warehouse=str(warehouse)), tmp_path / "copy")
    before = _files(warehouse)
    with pytest.raises(StoreClaimedError):
        HoldingsMaintainer(copy).refresh()
    with pytest.raises(StoreClaimedError):  # a maintainer's fold in its idle time
        fold_buckets(copy, load_holdings(copy).metadata.current_snapshot_id or 0, [0])
    argv = ["snapshots", "--pin", "dsar-1", "--store", str(copy.root), "--warehouse", str(warehouse)]
    assert "lineage claim" in one_line_failure(*run_cli(capsys, *argv)[::2])
    assert _files(warehouse) == before


def test_readers_of_a_copied_catalog_still_answer(apart: tuple[StoreLocation, StoreLocation, Path]) -> None:
    """Reading harms nothing: a copy (a staging catalog) answers from the same files."""
    _, copy, _ = apart
    assert Store(copy).count() == 3


def test_lineage_claim_hands_the_warehouse_to_the_copy(
    apart: tuple[StoreLocation, StoreLocation, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """After `lineage claim` through the copy, the copy writes and the original is refused."""
    original, copy, warehouse = apart
    code, out, err = run_cli(capsys, "claim", "--store", str(copy.root), "--warehouse", str(warehouse))
    assert code == 0, err
    assert "now belongs to the catalog sqlite:" in out
    _write(copy, "s9", 9)
    HoldingsMaintainer(copy).refresh()  # readers pin the events the holdings were made from
    assert Store(copy).count() == 4
    with pytest.raises(StoreClaimedError):
        _write(original, "s8", 8)


def test_a_damaged_claim_is_one_line_naming_the_fix(
    apart: tuple[StoreLocation, StoreLocation, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A claim that is not JSON stops compaction with one line that says to run `lineage claim`."""
    original, _, warehouse = apart
    Path(claim_path(original)).write_text("{not json")
    argv = ["compact", "--store", str(original.root), "--warehouse", str(warehouse)]
    line = one_line_failure(*run_cli(capsys, *argv)[::2])
    assert f"{CLAIM_FILE} of" in line and "is not a claim" in line and "lineage claim" in line


def test_a_claim_that_is_a_link_is_not_followed(
    apart: tuple[StoreLocation, StoreLocation, Path], tmp_path: Path
) -> None:
    """A symlink planted as the claim (pointing at a claim naming this catalog) is refused, not read."""
    original, _, _ = apart
    claim = Path(claim_path(original))
    planted = tmp_path / "planted.json"
    planted.write_text(claim.read_text())
    claim.unlink()
    claim.symlink_to(planted)
    with pytest.raises(StoreError, match=CLAIM_FILE):
        remove_orphans(original, grace_s=0)


def test_orphan_removal_keeps_the_claim(apart: tuple[StoreLocation, StoreLocation, Path]) -> None:
    """The claim lies beside the tables' folders, so removing unreferenced files never takes it."""
    original, _, _ = apart
    remove_orphans(original, grace_s=0)
    assert Path(claim_path(original)).is_file()


def test_a_postgres_catalog_restored_into_another_database_is_refused(
    catalog_database: CatalogDatabase, postgres: Postgres, s3: SeaweedS3
) -> None:
    """A shared catalog copied into another database, same S3 warehouse: its writer is refused, not the original's."""
    import psycopg2  # type: ignore[import-untyped]

    warehouse = f"s3://{s3.bucket}/claim-{uuid.uuid4().hex[:8]}"
    common = {
        "warehouse": warehouse, "s3_endpoint": s3.endpoint,
        "s3_access_key_id": s3.access_key, "s3_secret_access_key": s3.secret_key,
    }  # fmt: skip
    original = StoreLocation(root=None, catalog_uri=catalog_database.sqlalchemy_url, **common)
    _write(original, "s0", 0)
    restored = create_database(postgres, f"{catalog_database.name}_restored")
    copy = StoreLocation(root=None, catalog_uri=restored.sqlalchemy_url, **common)
    copy.catalog()  # pyiceberg makes its empty tables; the original's rows go in as a restore would put them
    connect = {"host": postgres.host, "port": postgres.port, "user": postgres.user, "password": postgres.password}
    source = psycopg2.connect(**connect, dbname=catalog_database.name)
    target = psycopg2.connect(**connect, dbname=restored.name)
    try:
        with source.cursor() as read, target.cursor() as write:
            for table in ("iceberg_tables", "iceberg_namespace_properties"):
                read.execute(f"SELECT * FROM {table}")  # noqa: S608 - our own table names
                rows = read.fetchall()
                if rows:
                    marks = ", ".join(["%s"] * len(rows[0]))
                    write.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608
        target.commit()
    finally:
        source.close()
        target.close()
    objects = s3.filesystem()
    before = sorted(i.path for i in objects.get_file_info(pafs.FileSelector(warehouse[5:], recursive=True)))
    with pytest.raises(StoreClaimedError, match=f"names postgresql:\\d+/{catalog_database.name}"):
        _write(copy, "s9", 9)
    assert sorted(i.path for i in objects.get_file_info(pafs.FileSelector(warehouse[5:], recursive=True))) == before
    _write(original, "s1", 1)
    HoldingsMaintainer(original).refresh()
    assert Store(original).count() == 2
