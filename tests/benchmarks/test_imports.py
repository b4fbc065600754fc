"""Every benchmark still imports: a module moved in lineage must not leave `./run bench NAME` broken."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("*.py")))
def test_the_benchmark_imports(script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its top level runs (imports and definitions; not its main) and defines main(), or is a helper module."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    names = runpy.run_path(str(BENCHMARKS / script), run_name="benchmark_import_check")
    assert script.startswith("_") or callable(names.get("main")), f"{script} has no main()"
    assert "benchmark_import_check" not in sys.modules
