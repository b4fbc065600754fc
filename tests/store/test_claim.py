"""A catalog copied or restored apart from its warehouse names its files: writing or deleting through it is refused."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import secrets
import shutil
import sqlite3
import stat
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from lineage.codec.avro import Codec
from lineage.contract.taxonomy import default_taxonomy
from lineage.errors import StoreAccessError, StoreClaimedError, StoreError
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.settings import Settings
from lineage.store import Store, StoreLocation
from lineage.store import claim as claims
from lineage.store.claim import CLAIM_FILE, claim_path, take_claim
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
    """The claim names the catalog's name, file path and inode, beside the tables' folders, mode 0600."""
    original, _, warehouse = apart
    claim = Path(claim_path(original))
    assert claim.parent == warehouse / "lineage" and claim.name == CLAIM_FILE
    found = json.loads(claim.read_text())
    catalog = original.root / "catalog.db"
    assert (found["kind"], found["name"]) == ("sqlite", "lineage")
    assert found["path"] == os.path.realpath(catalog) and found["file"].endswith(f":{catalog.stat().st_ino}")
    assert stat.S_IMODE(claim.stat().st_mode) == 0o600
    assert [p.name for p in claim.parent.iterdir() if p.is_file()] == [CLAIM_FILE]  # no temporary file left


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
    assert f"now belongs to the SQLite catalog 'lineage' in {os.path.realpath(copy.root / 'catalog.db')}" in out
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


@pytest.mark.parametrize(
    "planted",
    [
        json.dumps({"kind": "sqlite", "name": ["lineage"], "path": "/x", "file": "y"}),
        json.dumps({"kind": "sqlite", "name": "lineage", "path": "y" * 5000, "file": "1:2"}),
        "[" * 60000,
        json.dumps({"catalog": "sqlite:/elsewhere"}),
    ],
    ids=["not strings", "too long", "nested", "another shape"],
)
def test_a_hostile_claim_is_one_short_line_never_echoed(
    apart: tuple[StoreLocation, StoreLocation, Path], capsys: pytest.CaptureFixture[str], planted: str
) -> None:
    """Whatever was planted as the claim, compaction stops with one short line saying it is not a claim."""
    original, _, warehouse = apart
    Path(claim_path(original)).write_text(planted)
    argv = ["compact", "--store", str(original.root), "--warehouse", str(warehouse)]
    line = one_line_failure(*run_cli(capsys, *argv)[::2])
    assert "is not a claim" in line and len(line) < 500 and "\x1b" not in line and "Traceback" not in line


def test_a_pipe_planted_as_the_claim_does_not_block(apart: tuple[StoreLocation, StoreLocation, Path]) -> None:
    """Reading a FIFO would wait for a writer forever: it is refused at once as not a claim."""
    original, _, _ = apart
    claim = Path(claim_path(original))
    claim.unlink()
    os.mkfifo(claim, 0o600)
    with pytest.raises(StoreError, match="is not a claim"):
        remove_orphans(original, grace_s=0)


def test_a_running_writer_is_refused_once_the_warehouse_is_claimed_elsewhere(
    apart: tuple[StoreLocation, StoreLocation, Path],
) -> None:
    """A consumer that loaded its table before `lineage claim` ran elsewhere checks again before its next commit."""
    original, copy, warehouse = apart
    ingestor = Ingestor(original, "events", taxonomy=default_taxonomy())
    ingestor.add(0, 3, CODEC.encode_record(email_collected("s3", AT)))
    ingestor.flush()  # running, checked
    take_claim(copy)  # the warehouse handed to the restored catalog
    before = _files(warehouse)
    ingestor.add(0, 4, CODEC.encode_record(email_collected("s4", AT)))
    with pytest.raises(StoreClaimedError):
        ingestor.flush()
    assert _files(warehouse) == before


def test_of_two_first_writers_one_claim_stands(
    apart: tuple[StoreLocation, StoreLocation, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Original and copy start together on an unclaimed warehouse, both reading no claim: one of them is refused."""
    original, copy, _ = apart
    Path(claim_path(original)).unlink()  # a warehouse from before claims
    both_read = threading.Barrier(2)
    first_read = {id(original): True, id(copy): True}
    real_read = claims._read

    def read_together(location: StoreLocation) -> object:
        found = real_read(location)
        if first_read.get(id(location)):
            first_read[id(location)] = False
            both_read.wait(10)
        return found

    monkeypatch.setattr(claims, "_read", read_together)
    refused: dict[str, BaseException | None] = {}

    def check(name: str, location: StoreLocation) -> None:
        try:
            claims.check_claim(location)
            refused[name] = None
        except StoreClaimedError as exc:
            refused[name] = exc

    threads = [threading.Thread(target=check, args=args) for args in (("original", original), ("copy", copy))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(v is None for v in refused.values()) == [False, True], refused


def test_a_copy_under_another_catalog_name_in_the_same_file_is_refused(
    apart: tuple[StoreLocation, StoreLocation, Path],
) -> None:
    """The catalog's rows copied under another catalog name, in the same SQLite file, name the same files."""
    original, _, warehouse = apart
    db = sqlite3.connect(original.root / "catalog.db")
    for table in ("iceberg_tables", "iceberg_namespace_properties"):
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
        rest = ", ".join(columns[1:])
        copied = f"INSERT INTO {table} SELECT 'staging', {rest} FROM {table} WHERE catalog_name = 'lineage'"  # noqa: S608
        db.execute(copied)
    db.commit()
    db.close()
    before = _files(warehouse)
    with pytest.raises(StoreClaimedError):
        _write(dataclasses.replace(original, catalog_name="staging"), "s9", 9)
    assert _files(warehouse) == before


def test_the_same_catalog_file_through_a_hard_link_is_not_refused(
    apart: tuple[StoreLocation, StoreLocation, Path], tmp_path: Path
) -> None:
    """Another path to the same file (a bind mount in a container, a hard link) is the same catalog."""
    original, _, warehouse = apart
    linked = tmp_path / "mounted"
    linked.mkdir()
    os.link(original.root / "catalog.db", linked / "catalog.db")
    through = StoreLocation.from_settings(Settings(warehouse=str(warehouse)), linked)
    _write(through, "s9", 9)
    assert Store(through).count() == 3  # the holdings still pin the events before it
    HoldingsMaintainer(original).refresh()
    assert Store(original).count() == 4


def test_a_claim_naming_unicode_line_breaks_is_shown_escaped_on_one_line(
    apart: tuple[StoreLocation, StoreLocation, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A well-formed claim with line breaks and controls in its path: one line, each escaped (and a backslash)."""
    original, _, warehouse = apart
    planted = "/elsewhere\u2028second\u0085forged\u009b2J\nthird\x1b[2J\\u2028"
    planted_claim = {"kind": "sqlite", "name": "lineage", "path": planted, "file": "0:1"}
    Path(claim_path(original)).write_text(json.dumps(planted_claim))
    argv = ["compact", "--store", str(original.root), "--warehouse", str(warehouse)]
    line = one_line_failure(*run_cli(capsys, *argv)[::2])
    assert "\\u2028second\\x85forged\\x9b2J\\nthird\\x1b[2J\\\\u2028" in line  # a backslash escaped too
    assert not any(c in line for c in "\u2028\u0085\u009b\x1b")


@pytest.mark.parametrize("planted", ["pipe", "link"])
def test_lineage_claim_repairs_what_is_not_a_claim(
    apart: tuple[StoreLocation, StoreLocation, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path, planted: str
) -> None:
    """A pipe or a link at the claim's place stops writers (not as a fault to retry); `lineage claim` replaces it."""
    original, _, warehouse = apart
    claim = Path(claim_path(original))
    (tmp_path / "elsewhere.json").write_text(claim.read_text())
    claim.unlink()
    if planted == "pipe":
        os.mkfifo(claim, 0o600)
    else:
        claim.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(StoreError, match="is not a claim") as refused:
        _write(original, "s9", 9)
    assert not refused.value.retryable
    code, _, err = run_cli(capsys, "claim", "--store", str(original.root), "--warehouse", str(warehouse))
    assert code == 0, err
    assert claim.is_file() and not claim.is_symlink()
    _write(original, "s9", 9)


def test_a_warehouse_without_hard_links_is_claimed_by_a_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a file system refusing link(2) (vfat, some FUSE mounts) the first writer's claim is renamed into place."""

    def refused(*_: object) -> None:
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    monkeypatch.setattr(claims.os, "link", refused)
    location = StoreLocation.embedded(tmp_path / "store")
    _write(location, "s0", 0)
    claim = Path(claim_path(location))
    assert json.loads(claim.read_text())["kind"] == "sqlite"
    assert [p.name for p in claim.parent.iterdir() if p.is_file()] == [CLAIM_FILE]


def test_an_sqlite_uri_filename_catalog_writes_reads_and_claims(tmp_path: Path) -> None:
    """A catalog named as an SQLite URI filename (`sqlite:///file:...?uri=true`) is the same file's catalog."""
    plain = StoreLocation.embedded(tmp_path / "store")
    _write(plain, "s0", 0)
    uri = f"sqlite:///file:{tmp_path / 'store' / 'catalog.db'}?uri=true"
    named = StoreLocation(root=None, catalog_uri=uri, warehouse=plain.warehouse)
    _write(named, "s1", 1)
    HoldingsMaintainer(plain).refresh()
    assert Store(plain).count() == 2 and Store(named).count() == 2
    assert take_claim(named)["path"] == os.path.realpath(tmp_path / "store" / "catalog.db")


def test_lineage_claim_keeps_the_old_claim_when_it_cannot_write_the_new(
    apart: tuple[StoreLocation, StoreLocation, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk while handing over: the old claim stays in place (no moment without one), no file left."""
    original, copy, _ = apart
    claim = Path(claim_path(original))
    before = claim.read_bytes()

    def disk_full(*_: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(claims.os, "replace", disk_full)
    with pytest.raises(StoreError, match="writing the warehouse's .lineage-claim.json"):
        take_claim(copy)
    assert claim.read_bytes() == before
    assert [p.name for p in claim.parent.iterdir() if p.is_file()] == [CLAIM_FILE]


def test_a_folder_that_cannot_be_fsynced_does_not_stop_the_first_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some file systems refuse fsync on a folder (EINVAL): the claim is made and the write goes on."""
    real_fsync = os.fsync

    def no_folder_fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", no_folder_fsync)
    location = StoreLocation.embedded(tmp_path / "store")
    _write(location, "s0", 0)
    assert json.loads(Path(claim_path(location)).read_text())["kind"] == "sqlite"


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
    claimed = f"names the PostgreSQL catalog 'lineage' in database {catalog_database.name} of cluster \\d+"
    with pytest.raises(StoreClaimedError, match=claimed):
        _write(copy, "s9", 9)
    assert sorted(i.path for i in objects.get_file_info(pafs.FileSelector(warehouse[5:], recursive=True))) == before
    _write(original, "s1", 1)
    HoldingsMaintainer(original).refresh()
    assert Store(original).count() == 2
    with objects.open_input_stream(claim_path(original)) as stream:
        found = json.loads(stream.read())
    with objects.open_output_stream(claim_path(original)) as stream:  # as if the cluster were upgraded
        stream.write(json.dumps({**found, "system": "1"}).encode())
    with pytest.raises(StoreClaimedError, match="a major upgrade, by pg_upgrade or a dump, gives a cluster a new"):
        _write(original, "s2", 2)


def test_a_role_refused_pg_control_system_gets_one_line_naming_the_grant(
    catalog_database: CatalogDatabase, postgres: Postgres, s3: SeaweedS3
) -> None:
    """A server that revoked pg_control_system(): writers stop with a line naming the GRANT, not a retryable fault."""
    import psycopg2

    role, password = f"writer_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
    connect = {"host": postgres.host, "port": postgres.port, "user": postgres.user, "password": postgres.password}
    admin = psycopg2.connect(**connect, dbname=catalog_database.name)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE ROLE {role} LOGIN PASSWORD %s", (password,))
            cur.execute(f'GRANT ALL ON DATABASE "{catalog_database.name}" TO {role}')
            cur.execute(f"GRANT ALL ON SCHEMA public TO {role}")
            cur.execute("REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC")
        server_url = catalog_database.sqlalchemy_url.split("://", 1)[1].split("@", 1)[1]
        location = StoreLocation(
            root=None, catalog_uri=f"postgresql+psycopg2://{role}@{server_url}", catalog_password=password,
            warehouse=f"s3://{s3.bucket}/revoked-{uuid.uuid4().hex[:8]}", s3_endpoint=s3.endpoint,
            s3_access_key_id=s3.access_key, s3_secret_access_key=s3.secret_key,
        )  # fmt: skip
        with pytest.raises(StoreAccessError) as refused:
            _write(location, "s0", 0)
        assert not refused.value.retryable
        assert "GRANT EXECUTE ON FUNCTION pg_control_system()" in str(refused.value)
        assert password not in str(refused.value) and "\n" not in str(refused.value)
    finally:
        with admin.cursor() as cur:
            cur.execute("GRANT EXECUTE ON FUNCTION pg_control_system() TO PUBLIC")
        admin.close()
