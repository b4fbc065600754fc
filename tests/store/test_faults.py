"""Store faults on the embedded store: damaged files, glob-like paths (each read and kept apart), a full disk."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from lineage.codec.avro import Codec
from lineage.contract.records import Record, make_record
from lineage.contract.taxonomy import default_taxonomy
from lineage.errors import ConfigurationError, StoreCorruptError, StoreUnavailableError
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation
from tests.fixtures import T0
from tests.services import Postgres, SeaweedS3


def _records(prefix: str, n: int) -> list[Record]:
    """``n`` COLLECTED events of subjects ``<prefix>-<i>``."""
    return [
        make_record(
            "COLLECTED",
            system="app",
            system_region="CN",
            occurred_at=T0,
            subject_id=f"{prefix}-{i}",
            categories=["user.contact.email"],
            purpose="essential.service",
            legal_basis="CONTRACT",
        )  # fmt: skip
        for i in range(n)
    ]


def store_of(records: list[Record], folder: Path | StoreLocation, source: str = "events") -> Store:
    """A store holding ``records`` from ``source`` (a distinct source per call: one commit, one data file, each)."""
    ingestor = Ingestor(folder, source, taxonomy=default_taxonomy())
    codec = Codec()
    for offset, record in enumerate(records):
        assert ingestor.add(0, offset, codec.encode_record(record)) is None
    ingestor.flush()
    return Store(folder)


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and mtime."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_a_corrupt_data_file_is_store_corrupt_error(tmp_path: Path) -> None:
    """Through the Python API too, a garbled data file is StoreCorruptError naming it, in queries and compaction."""
    store_of(_records("a", 5), tmp_path, "one")
    store = store_of(_records("b", 5), tmp_path, "two")
    victim = sorted(tmp_path.rglob("*.parquet"))[0]
    victim.write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1")
    with pytest.raises(StoreCorruptError, match=victim.name):
        store.count()
    with pytest.raises(StoreCorruptError, match=victim.name):
        store.compact(grace_s=0)


def test_a_catalog_left_mid_commit_by_a_killed_writer_opens_as_it_was(tmp_path: Path) -> None:
    """A writer killed -9 inside a catalog transaction leaves a hot journal: the store still opens, unchanged."""
    store_of(_records("a", 5), tmp_path)
    killed = (
        "import os, signal, sqlite3, sys\n"
        "con = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "con.execute('BEGIN IMMEDIATE')\n"
        "con.execute('DELETE FROM iceberg_tables')\n"
        "con.execute('CREATE TABLE ballast AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
        "WHERE i < 50000) SELECT i, hex(randomblob(64)) AS b FROM n')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", killed, str(tmp_path / "catalog.db")], check=False)
    assert proc.returncode == -9
    assert (tmp_path / "catalog.db-journal").is_file()  # the moment the CI run met: a hot journal
    assert Store(tmp_path).count() == 5


@pytest.mark.parametrize("name", ["store[1]", "store*", "store[!2]", "st{ore1,ore2}"])
def test_a_path_with_glob_characters_reads_and_compacts_only_itself(tmp_path: Path, name: str) -> None:
    """A store named like a glob beside stores it would match: reads see only its rows, compaction touches only it."""
    odd = tmp_path / name
    siblings = [tmp_path / "store1", tmp_path / "store2", tmp_path / "storeX", tmp_path / "st"]
    for i, sibling in enumerate(siblings):
        store_of(_records(f"sib{i}", 3 + i), sibling)
    own = _records("own", 4)
    store_of(own[:2], odd, "one")
    store = store_of(own[2:], odd, "two")
    before = {s: _tree(s) for s in siblings}
    assert sorted(store.event_ids()) == sorted(r["event_id"] for r in own)
    report = store.compact(grace_s=0, expire_after_s=0)
    assert report.files_in == 2 and report.files_out == 1
    assert sorted(Store(odd).event_ids()) == sorted(r["event_id"] for r in own)
    for sibling in siblings:
        assert _tree(sibling) == before[sibling], f"compacting {name} changed {sibling.name}"
        assert Store(sibling).count() == 3 + siblings.index(sibling)


@pytest.mark.parametrize("name", ["store?", "store#1"])
def test_a_path_with_a_question_mark_or_hash_is_refused_before_anything_is_written(tmp_path: Path, name: str) -> None:
    """A store path with ? or # (pyiceberg cuts a location there) is refused by name, and nothing is created."""
    with pytest.raises(ConfigurationError, match="store_dir"):
        store_of(_records("own", 2), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MB filesystem (tmpfs) mounted under ``tmp_path``; fails, never skips, if it cannot be mounted."""
    mount = tmp_path / "disk"
    mount.mkdir(mode=0o700)
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.fail(f"could not mount a small tmpfs for the full-disk test: {made.stderr.strip()}", pytrace=False)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs for this test (we run as root; mount is the real thing, no mock)."""
    yield from tmpfs(tmp_path)


def fill(folder: Path, leave_bytes: int) -> Path:
    """Write a ballast file until only about ``leave_bytes`` are free on ``folder``'s filesystem; return it."""
    ballast = folder / "ballast"
    stat = os.statvfs(folder)
    free = stat.f_bavail * stat.f_frsize
    with open(ballast, "wb") as f:
        f.write(b"\0" * max(free - leave_bytes, 0))
    return ballast


def test_a_full_catalog_disk_is_one_line_and_the_next_flush_stores_it_once(small_disk: Path, tmp_path: Path) -> None:
    """The SQLite catalog's disk fills (data files elsewhere): "disk is full", rows kept; once freed, stored once."""
    location = StoreLocation(
        root=small_disk / "store",
        catalog_uri=f"sqlite:///{small_disk / 'store' / 'catalog.db'}",
        warehouse=str(tmp_path / "warehouse"),
    )
    ingestor = Ingestor(location, "events", taxonomy=default_taxonomy())
    records = _records("full", 40)
    codec = Codec()
    for offset, record in enumerate(records[:20]):
        ingestor.add(0, offset, codec.encode_record(record))
    ingestor.flush()
    ballast = fill(small_disk, leave_bytes=0)
    for offset, record in enumerate(records[20:], start=20):
        ingestor.add(0, offset, codec.encode_record(record))
    with pytest.raises(StoreUnavailableError, match="disk of .* is full"):
        ingestor.flush()
    ballast.unlink()
    ingestor.flush()  # the rows stayed buffered
    store = Store(location)
    assert sorted(store.event_ids()) == sorted(r["event_id"] for r in records)


def _shared_location(postgres: Postgres, s3: SeaweedS3) -> StoreLocation:
    """A fresh namespace in the PostgreSQL catalog with its files under a fresh S3 prefix."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    return StoreLocation(
        root=None, catalog_uri=postgres.sqlalchemy_uri(), catalog_password=postgres.password, namespace=name,
        warehouse=f"s3://{s3.bucket}/{name}", s3_endpoint=s3.endpoint,
        s3_access_key_id=s3.access_key, s3_secret_access_key=s3.secret_key,
    )  # fmt: skip


def test_a_corrupt_object_on_s3_is_store_corrupt_error(postgres: Postgres, s3: SeaweedS3) -> None:
    """On the shared store too, an overwritten data object is StoreCorruptError naming it, in queries and compaction."""
    location = _shared_location(postgres, s3)
    store_of(_records("a", 5), location, "one")
    store = store_of(_records("b", 5), location, "two")
    fs = s3.filesystem()
    data = [i.path for i in fs.get_file_info(pafs.FileSelector(location.warehouse[5:], recursive=True))]
    victim = sorted(p for p in data if p.endswith(".parquet"))[0]
    with fs.open_output_stream(victim) as out:
        out.write(b"not parquet\n" * 50)
    name = victim.rsplit("/", 1)[-1]
    with pytest.raises(StoreCorruptError, match=name):
        store.count()
    with pytest.raises(StoreCorruptError, match=name):
        store.compact(grace_s=0)


def test_a_shared_catalog_without_the_table_is_refused_and_left_as_it_was(
    capsys: pytest.CaptureFixture[str], postgres: Postgres, s3: SeaweedS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`access` on a namespace nothing was stored in: exit 2, one line naming LINEAGE_CATALOG_URI; no namespace made."""
    from lineage.cli import main

    location = _shared_location(postgres, s3)
    for name, value in {
        "LINEAGE_CATALOG_URI": location.catalog_uri, "LINEAGE_CATALOG_PASSWORD": postgres.password,
        "LINEAGE_NAMESPACE": location.namespace, "LINEAGE_WAREHOUSE": location.warehouse,
        "LINEAGE_S3_ENDPOINT": s3.endpoint, "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    assert main(["access", "user-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lineage: LINEAGE_CATALOG_URI:") and len(err.strip().splitlines()) == 1, err
    assert postgres.password not in err
    assert location.namespace not in {n[0] for n in location.catalog().list_namespaces()}


def test_a_percent_in_the_store_path_is_refused(tmp_path: Path) -> None:
    """SQLAlchemy decodes %XX in a catalog URL: 'st%41' would open the store 'stA'; refused instead."""
    from lineage.errors import ConfigurationError
    from lineage.store import StoreLocation

    with pytest.raises(ConfigurationError, match="'%'"):
        StoreLocation.embedded(tmp_path / "st%41")
    assert not (tmp_path / "stA").exists() and not (tmp_path / "st%41").exists()
