"""Reading commands on a store that is missing, empty, corrupt or beside a glob-like sibling: one line, exit 2."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from lineage.contract.records import Record
from lineage.private import private_files
from lineage.store import StoreLocation
from tests.fixtures import T0, sample_events, store_of
from tests.fixtures import one_line_failure as one_line
from tests.fixtures import run_cli as run


def _readers(out: Path) -> dict[str, list[str]]:
    """Every command that reads the store, with the arguments it needs besides ``--store`` (outputs under ``out``)."""
    policy = out.parent / "policy.toml"
    policy.write_text('[organisation]\nname = "Shop"\nsystems = ["checkout"]\n', encoding="utf-8")
    return {
        "access": ["access", "user-1"],
        "erasure": ["erasure", "user-1"],
        "breach": ["breach", "--node", "checkout", "--from", "2026-05-01T00:00Z", "--to", "2026-05-02T00:00Z"],
        "transfers": ["transfers"],
        "retention": ["retention"],
        "ropa": ["ropa", "--out", str(out / "ropa.md")],
        "check": ["check", "--policy", str(policy)],
        "map": ["map", "--out", str(out / "map.html")],
        "graph": ["graph"],
        "snapshots": ["snapshots"],
        "compact": ["compact"],
        "holdings": ["holdings"],
        "forget": ["forget", "user-1", "--case", "REQ-1"],
        "retain": ["retain", "--older-than", "3650"],
        "claim": ["claim"],
    }


COMMANDS = [
    "access", "breach", "check", "claim", "compact", "erasure", "forget", "graph", "holdings", "map", "retain",
    "retention", "ropa", "snapshots", "transfers",
]  # fmt: skip


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` with its size and mtime (what a reader must not change)."""
    if not folder.exists():
        return {}
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in [folder, *folder.rglob("*")]}


def _missing(folder: Path) -> None:
    """No folder at all."""


def _empty_folder(folder: Path) -> None:
    """A folder with nothing in it."""
    folder.mkdir(mode=0o700)


def _stray_catalog_file(folder: Path) -> None:
    """A folder whose catalog.db is an empty file (a reader must not turn it into a catalog)."""
    folder.mkdir(mode=0o700)
    (folder / "catalog.db").touch(mode=0o600)


def _catalog_without_table(folder: Path) -> None:
    """A catalog a consumer opened but never made its table in."""
    with private_files():
        StoreLocation.embedded(folder).catalog(create=True)


def _table_without_snapshot(folder: Path) -> None:
    """A catalog with the events table but nothing committed to it."""
    with private_files():
        StoreLocation.embedded(folder).load(create=True)


STATES: dict[str, Callable[[Path], None]] = {
    "missing": _missing,
    "empty folder": _empty_folder,
    "stray catalog.db": _stray_catalog_file,
    "catalog without table": _catalog_without_table,
    "table without snapshot": _table_without_snapshot,
}


@pytest.mark.parametrize("state", sorted(STATES))
@pytest.mark.parametrize("command", COMMANDS)
def test_a_store_holding_nothing_is_one_line_and_untouched(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, state: str
) -> None:
    """Each reading command (and compact) on a missing or empty store: exit 2, one line naming --store, no file made."""
    folder = tmp_path / "store"
    STATES[state](folder)
    before = _tree(folder)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, out, err = run(capsys, *_readers(out_dir)[command], "--store", str(folder))
    line = one_line(code, err)
    assert "--store" in line and str(folder) in line, line
    assert out == ""
    assert _tree(folder) == before, "a reader changed the store's folder"
    assert list(out_dir.iterdir()) == [], "a reader wrote an output for a store holding nothing"


@pytest.mark.parametrize("command", ["access", "snapshots", "transfers"])
def test_a_store_from_the_environment_is_named_by_its_variable(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """Without --store, the line names LINEAGE_STORE_DIR, the setting that pointed at nothing."""
    monkeypatch.setenv("LINEAGE_STORE_DIR", str(tmp_path / "nowhere"))
    code, _, err = run(capsys, *_readers(tmp_path)[command])
    line = one_line(code, err)
    assert "LINEAGE_STORE_DIR" in line and "nowhere" in line
    assert not (tmp_path / "nowhere").exists()


def test_a_sample_store_answers(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The control: the same commands on a store holding events succeed (exit 0)."""
    from lineage.contract.records import to_record

    store_of([to_record(e) for e in sample_events()], tmp_path / "store")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for command, argv in _readers(out_dir).items():
        extra = ["--now", T0.isoformat()] if command in ("retention", "check", "map") else []
        code, _, err = run(capsys, *argv, *extra, "--store", str(tmp_path / "store"))
        assert code == 0, f"{command}: {err}"
    assert os.stat(out_dir / "map.html").st_mode & 0o077 == 0


def test_every_command_naming_a_store_is_covered() -> None:
    """The list above is every sub-command with a --store option but ingest (it may create a store) and serve.

    ``serve`` opens the store with the same ``store_for`` and then runs until stopped; its refusal of a
    missing store is in tests/console/test_cli.py, and a store error while serving is a page's one line.
    """
    from lineage.cli import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    with_store = {name for name, p in sub.choices.items() if any("--store" in a.option_strings for a in p._actions)}
    assert with_store - {"ingest", "serve"} == set(COMMANDS)


def _two_file_store(folder: Path, ingested: Callable[[Record], Record] = lambda r: r) -> list[Path]:
    """The sample events (each changed by ``ingested``) in two commits: two data files, a group to compact."""
    from lineage.codec.avro import Codec
    from lineage.contract.records import to_record
    from lineage.contract.taxonomy import default_taxonomy
    from lineage.ingest.pipeline import Ingestor

    records = [ingested(to_record(e)) for e in sample_events()]
    for source, part in (("one", records[:3]), ("two", records[3:])):  # two sources: offsets of each from 0
        ingestor = Ingestor(folder, source, taxonomy=default_taxonomy())
        for offset, record in enumerate(part):
            assert ingestor.add(0, offset, Codec().encode_record(record)) is None
        ingestor.flush()
    files = sorted((folder / "warehouse").rglob("*.parquet"))
    assert len(files) == 2
    return files


def _truncate(path: Path) -> None:
    """Cut the file short (a disk that filled during a copy)."""
    os.truncate(path, 100)


def _garble_middle(path: Path) -> None:
    """Flip the bytes between the header and the footer (bit rot): magic bytes intact, pages and metadata not."""
    data = bytearray(path.read_bytes())
    for i in range(200, len(data) - 600):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def _zero_footer(path: Path) -> None:
    """Zero the footer's metadata, keeping the magic bytes at both ends."""
    data = bytearray(path.read_bytes())
    data[-300:-8] = bytes(292)
    path.write_bytes(bytes(data))


def _overwrite(path: Path) -> None:
    """Replace the file by text (another program wrote over it)."""
    path.write_text("not parquet\n" * 100, encoding="utf-8")


def _delete(path: Path) -> None:
    """Remove the file (an operator's clean-up)."""
    path.unlink()


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate,
    "garbled": _garble_middle,
    "zeroed footer": _zero_footer,
    "overwritten": _overwrite,
    "deleted": _delete,
}


def error_line(code: int, err: str) -> str:
    """Assert exit 2 and one error line on stderr besides the snapshot notice, no traceback; return it."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if not line.startswith("lineage: reading snapshot")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("command", ["access", "compact", "graph", "transfers"])
def test_a_damaged_data_file_is_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, damage: str
) -> None:
    """A truncated, garbled, overwritten or deleted data file: exit 2, one line naming the file, no library text."""
    folder = tmp_path / "store"
    victim = _two_file_store(folder)[0]
    DAMAGE[damage](victim)
    code, out, err = run(capsys, *_readers(tmp_path / "out")[command], "--store", str(folder))
    line = error_line(code, err)
    # pyarrow names the file for every damage but a zeroed footer ("Invalid base64 input" alone)
    assert victim.name in line or (damage == "zeroed footer" and "a data file" in line), line
    assert ("missing" if damage == "deleted" else "corrupt") in line, line
    # a file gone may be one a forget, retain or compact removed under a read begun before: ask again first
    assert ("ask again if a forget" in line) == (damage == "deleted"), line
    for library_text in ("Invalid Input Error", "thrift", "magic bytes", "base64", "Arrow", "events_files"):
        assert library_text not in line, line
    assert out == ""


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("table", ["events", "holdings"])
def test_a_damaged_file_a_person_s_lookup_reads_is_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, table: str, damage: str
) -> None:
    """Stored holdings, the plan kept by an earlier process: the lookups' footer check refuses as a full read does."""
    from lineage.contract.records import to_record
    from lineage.store.layout import buckets_of

    folder = tmp_path / "store"
    store_of([to_record(e) for e in sample_events()], folder).close()
    assert run(capsys, "access", "user-1", "--store", str(folder))[0] == 0  # plans.json kept
    data = sorted((folder / "warehouse" / "lineage" / table / "data").rglob("*.parquet"))
    if table == "holdings":  # the file of user-1's bucket
        (bucket,) = buckets_of(["user-1"])
        data = [f for f in data if f.parent.name == f"bucket={bucket}"]
    victim = data[0]
    DAMAGE[damage](victim)
    code, out, err = run(capsys, "access", "user-1", "--store", str(folder))
    line = error_line(code, err)
    assert victim.name in line or (damage == "zeroed footer" and "a data file" in line), line
    assert ("missing" if damage == "deleted" else "corrupt") in line, line
    assert out == ""


def test_a_glob_like_store_answers_and_compacts_only_itself(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``access`` on store[1] does not see store1's subject; ``compact`` of store[1] leaves store1 as it was."""
    _two_file_store(tmp_path / "store1")  # the sample events: user-1 is held there
    odd = tmp_path / "store[1]"
    _two_file_store(odd, ingested=lambda record: {**record, "subject_id": "other"} if record["subject_id"] else record)
    answers = {}
    for folder in (tmp_path / "store1", odd):
        code, out, err = run(capsys, "access", "user-1", "--store", str(folder), "--format", "json")
        assert code == 0, err
        answers[folder.name] = json.loads(out)["holds_data"]
    assert answers == {"store1": True, "store[1]": False}
    before = _tree(tmp_path / "store1")
    code, out, err = run(capsys, "compact", "--store", str(odd), "--grace", "600", "--expire-after", "0")
    assert code == 0, err
    assert "rewrote 2 files into 1" in out
    assert _tree(tmp_path / "store1") == before


@pytest.mark.parametrize("command", ["access", "compact", "ingest"])
def test_a_store_path_with_a_question_mark_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    """A --store holding '?' (which pyiceberg would cut short) is refused naming --store, and nothing is made."""
    argv = {"access": ["access", "user-1"], "compact": ["compact"], "ingest": ["ingest", "--bootstrap-servers", "x:1"]}
    code, _, err = run(capsys, *argv[command], "--store", str(tmp_path / "a?b"))
    line = one_line(code, err)
    assert line.startswith("lineage: --store:") and "a?b" in line
    assert list(tmp_path.iterdir()) == []


def test_compact_refuses_a_grace_shorter_than_a_flush(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`compact --grace 0` could delete a consumer's written-but-uncommitted files: refused, naming --grace."""
    from lineage.contract.records import to_record

    store_of([to_record(e) for e in sample_events()], tmp_path / "store")
    before = sorted(p.name for p in (tmp_path / "store").rglob("*"))
    code, _, err = run(capsys, "compact", "--store", str(tmp_path / "store"), "--grace", "0")
    assert code == 2 and err.count("\n") == 1 and "--grace" in err
    assert sorted(p.name for p in (tmp_path / "store").rglob("*")) == before
