"""The architecture is checked by a machine: import-linter fails the lint step on a wrong import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _copy(tmp_path: Path) -> Path:
    for name in ("lineage", "consumers"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    """The package as committed keeps every layer and adapter contract."""
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("lineage/contract/rules.py", "import duckdb", "duckdb only in lineage.store.engine"),
        ("lineage/store/writer.py", "from lineage.answers import access_request", "Layers"),
        ("lineage/sdk/emitter.py", "import networkx", "networkx only in lineage.answers.graph"),
        ("lineage/answers/breach.py", "import kafka", "kafka-python only in lineage.transport.kafka"),
        # a package's __init__ and a private helper are covered too, not only the modules named
        ("lineage/transport/__init__.py", "import kafka", "kafka-python only in lineage.transport.kafka"),
        ("lineage/answers/_common.py", "import networkx", "networkx only in lineage.answers.graph"),
        ("lineage/answers/breach.py", "import pyarrow", "pyarrow only in lineage.store"),
        ("lineage/ingest/pipeline.py", "import pyiceberg", "pyiceberg only in lineage.store"),
        ("lineage/store/writer.py", "import sqlalchemy", "SQLAlchemy only in lineage.store.catalog"),
        # the console's libraries stay in their modules, and the console below the CLI only
        ("lineage/console/pages.py", "import sqlalchemy", "SQLAlchemy only in lineage.store.catalog"),
        ("lineage/answers/access.py", "import fastapi", "The web stack only in lineage.console"),
        ("lineage/console/app.py", "import argon2", "The web stack only in lineage.console"),
        ("lineage/world/demo.py", "import lineage.console.app", "Layers"),
        # the console's app imports its routers, never the reverse; a router importing the other is a circle too
        ("lineage/console/pages.py", "import lineage.console.app", "No import circles"),
        ("lineage/console/actions.py", "import lineage.console.api", "No import circles"),
        ("lineage/present/datamap.py", "from lineage.store import Store", "present shapes answers"),
        ("consumers/holdings.py", "from lineage.cli._common import store_for", "A private module"),
        ("lineage/transport/sink.py", "import lineage.devtools.local_broker", "Development tooling"),
        ("lineage/sdk/emitter.py", "from lineage.devtools import local_broker", "Development tooling"),
        ("lineage/console/server.py", "import lineage.devtools", "Development tooling"),
    ],
)
def test_a_wrong_import_breaks_the_lint_step(tmp_path: Path, module: str, line: str, contract: str) -> None:
    """A heavy library outside its adapter, or an upward import, makes ``lint-imports`` fail naming the contract."""
    tree = _copy(tmp_path)
    with (tree / module).open("a", encoding="utf-8") as f:
        f.write(f"\n{line}  # noqa\n")
    result = _lint(tree)
    assert result.returncode == 1
    assert f"{contract}" in result.stdout and "BROKEN" in result.stdout, result.stdout
