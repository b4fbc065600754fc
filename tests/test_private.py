"""Private files: created or overwritten readable by their owner only; a bad path names the option."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lineage import ConfigurationError
from lineage.private import open_private, private_dir


def test_an_existing_public_file_becomes_private(tmp_path: Path) -> None:
    """Overwriting a 0644 file leaves it 0600 with the new content."""
    path = tmp_path / "report.csv"
    path.write_text("old")
    os.chmod(path, 0o644)
    with open_private(path, "--out") as f:
        f.write("new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "new"


def test_a_missing_folder_names_the_option(tmp_path: Path) -> None:
    """A path in a folder that does not exist raises ConfigurationError naming the option and the path."""
    with pytest.raises(ConfigurationError, match=r"--subjects-out: cannot write .*nowhere/x.csv"):
        open_private(tmp_path / "nowhere" / "x.csv", "--subjects-out")


def test_a_symlink_target_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    """An output path that is a symlink is refused; the file it points at keeps its content and mode."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.chmod(victim, 0o644)
    link = tmp_path / "out.csv"
    link.symlink_to(victim)
    with pytest.raises(ConfigurationError, match=r"--out: .*symbolic link"):
        open_private(link, "--out")
    assert victim.read_text() == "precious"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644


def test_a_dangling_symlink_is_refused_and_nothing_created(tmp_path: Path) -> None:
    """A symlink to a missing file is refused; no file appears where it points."""
    link = tmp_path / "out.csv"
    link.symlink_to(tmp_path / "created-through-link")
    with pytest.raises(ConfigurationError, match="symbolic link"):
        open_private(link, "--subjects-out")
    assert not (tmp_path / "created-through-link").exists()


def test_a_folder_target_is_one_clear_error(tmp_path: Path) -> None:
    """A target that is a folder raises ConfigurationError naming the option, not IsADirectoryError."""
    with pytest.raises(ConfigurationError, match=r"--json: .*is a folder"):
        open_private(tmp_path, "--json")


def test_another_users_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A target owned by another user is refused (its owner could read what we wrote into it)."""
    path = tmp_path / "theirs.csv"
    path.write_text("theirs")
    monkeypatch.setattr(os, "geteuid", lambda: path.stat().st_uid + 1)
    with pytest.raises(ConfigurationError, match="belongs to another user"):
        open_private(path, "--subjects-out")
    assert path.read_text() == "theirs"


def test_a_failed_write_leaves_the_old_file_and_no_leftovers(tmp_path: Path) -> None:
    """An error inside the block keeps the previous content and removes the half-written file."""
    path = tmp_path / "map.html"
    path.write_text("old")
    with pytest.raises(RuntimeError), open_private(path, "--out") as f:
        f.write("half")
        raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.html"]


def test_the_output_is_a_new_file_not_the_old_inode(tmp_path: Path) -> None:
    """The target is replaced by rename: a hard link to the old file keeps the old content."""
    path = tmp_path / "report.csv"
    path.write_text("old")
    other = tmp_path / "hardlink"
    os.link(path, other)
    with open_private(path, "--out") as f:
        f.write("new")
    assert path.read_text() == "new" and other.read_text() == "old"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_store_folder_that_cannot_be_made_names_the_option(tmp_path: Path) -> None:
    """private_dir under a file (or a read-only folder) raises ConfigurationError naming the option."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigurationError, match=r"--store: cannot create folder"):
        private_dir(blocker / "store", "--store")
    with pytest.raises(ConfigurationError, match=r"--store: .* is not a folder"):
        private_dir(blocker, "--store")
