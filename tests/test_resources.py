"""Shipped files (schemas, queries, policies) are found in a wheel's package data or in the checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from lineage.resources import shipped_dir

REPO = Path(__file__).parents[1]


def test_a_checkout_reads_the_top_level_folders() -> None:
    """In the repository (an editable install) the shipped files are the top-level folders a user edits."""
    for kind in ("schemas", "queries", "policies"):
        assert shipped_dir(kind) == REPO / kind  # type: ignore[arg-type]


def test_an_installed_package_reads_its_package_data(tmp_path: Path) -> None:
    """Laid out as a wheel installs it (``lineage/shipped/<kind>``), the package data wins over any checkout."""
    package = tmp_path / "lineage"
    package.mkdir()
    (package / "__init__.py").write_text("")
    shutil.copy(REPO / "lineage" / "resources.py", package / "resources.py")
    (package / "shipped" / "queries").mkdir(parents=True)
    code = "from lineage.resources import shipped_dir; print(shipped_dir('queries'))"
    out = subprocess.run(
        [sys.executable, "-E", "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert Path(out) == package / "shipped" / "queries"
