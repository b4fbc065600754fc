"""Private files: created or overwritten readable by their owner only; a bad path names the option."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lineage import ConfigurationError
from lineage.private import open_private


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
