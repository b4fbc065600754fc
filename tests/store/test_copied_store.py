"""A store folder copied or moved still names the original's files: every door refuses it, the original untouched."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lineage.codec.avro import Codec
from lineage.contract.taxonomy import default_taxonomy
from lineage.errors import StoreError
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation
from tests.fixtures import email_collected, one_line_failure, run_cli, store_of

AT = datetime(2026, 5, 1, tzinfo=UTC)


def _files(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` and its size."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def copied(tmp_path: Path) -> tuple[Path, Path]:
    """An original store of three people (holdings included) and a copy of its folder made with ``cp -r``."""
    original, copy = tmp_path / "original", tmp_path / "copy"
    store_of([email_collected(f"s{i}", AT + timedelta(days=i)) for i in range(3)], original)
    shutil.copytree(original, copy)
    return original, copy


def test_a_copied_store_is_refused_in_one_line_naming_the_store(
    copied: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """``lineage access`` on a copy: exit 2, one line naming --store and why, no identifier."""
    _, copy = copied
    line = one_line_failure(*run_cli(capsys, "access", "s1", "--store", str(copy))[::2])
    assert "--store" in line and "copied or moved" in line and "s1" not in line.replace(str(copy), "")


def test_forget_on_a_copy_changes_nothing_of_the_original(
    copied: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A forget run on the copy is refused before it removes anything, and the original still answers."""
    original, copy = copied
    before = _files(original / "warehouse")
    code, _, err = run_cli(capsys, "forget", "s1", "--case", "C-1", "--store", str(copy), "--grace", "0")
    assert "copied or moved" in one_line_failure(code, err)
    assert _files(original / "warehouse") == before
    assert sorted(r["subject_id"] for r in Store(original).sql("SELECT DISTINCT subject_id FROM events")) == [
        "s0", "s1", "s2",
    ]  # fmt: skip


def test_a_writer_on_a_copy_is_refused_before_it_writes(copied: tuple[Path, Path]) -> None:
    """An ingest commit on the copy raises StoreError naming --store; no file lands in the original."""
    original, copy = copied
    before = _files(original / "warehouse")
    ingestor = Ingestor(StoreLocation.embedded(copy), "events", taxonomy=default_taxonomy())
    ingestor.add(0, 10, Codec().encode_record(email_collected("s9", AT)))
    with pytest.raises(StoreError, match="--store: .* copied or moved"):
        ingestor.flush()
    assert _files(original / "warehouse") == before


def test_a_store_moved_back_is_read_again(copied: tuple[Path, Path]) -> None:
    """The refusal is about where the files are: the original folder, in its place, reads as before."""
    original, copy = copied
    shutil.rmtree(original)
    copy.rename(original)
    assert Store(original).count() == 3


def test_the_same_store_through_a_link_or_dot_dot_is_not_refused(copied: tuple[Path, Path], tmp_path: Path) -> None:
    """Paths are compared resolved: a linked folder, or one spelled with '..', is the store itself."""
    original, _ = copied
    link = tmp_path / "link"
    link.symlink_to(original)
    assert Store(link).count() == 3
    (tmp_path / "elsewhere").mkdir()
    assert Store(tmp_path / "elsewhere" / ".." / "original").count() == 3


def test_a_copy_whose_catalog_was_edited_to_name_its_own_metadata_is_still_refused(
    copied: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The metadata inside still says where the table writes (the original): a forget is refused before it writes."""
    original, copy = copied
    con = sqlite3.connect(copy / "catalog.db")
    with con:
        con.execute("UPDATE iceberg_tables SET metadata_location = replace(metadata_location, ?, ?)",
                    (str(original), str(copy)))  # fmt: skip
    con.close()
    before = _files(original / "warehouse")
    code, _, err = run_cli(capsys, "forget", "s1", "--case", "C-1", "--store", str(copy), "--grace", "0")
    assert "copied or moved" in one_line_failure(code, err)
    assert _files(original / "warehouse") == before
