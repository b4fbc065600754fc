"""Reading commands on a store that is missing, empty, corrupt or beside a glob-like sibling: one line, exit 2."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from lineage.cli import main
from lineage.private import private_files
from lineage.store import StoreLocation
from tests.fixtures import T0, sample_events, store_of


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
        "check": ["check", "--policy", str(policy)],
        "map": ["map", "--out", str(out / "map.html")],
        "graph": ["graph"],
        "snapshots": ["snapshots"],
        "compact": ["compact"],
    }


COMMANDS = ["access", "breach", "check", "compact", "erasure", "graph", "map", "retention", "snapshots", "transfers"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_line(code: int, err: str) -> str:
    """Assert exit 2 and exactly one line on stderr, no traceback; return the line."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


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
    """The list above is every sub-command with a --store option except ingest (the one that may create a store)."""
    from lineage.cli import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    with_store = {name for name, p in sub.choices.items() if any("--store" in a.option_strings for a in p._actions)}
    assert with_store - {"ingest"} == set(COMMANDS)
