"""Arrow's allocator in lineage's processes, the collector paused, the cores usable (lineage/process.py)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest

from lineage.process import ARROW_POOL, paused_gc, settle_heap, usable_cores
from tests.fixtures import overlapping_blocks

_PROBE = (
    "import sys; from lineage.cli import main; "
    "code = main(sys.argv[1:]); "
    "import pyarrow; print(pyarrow.default_memory_pool().backend_name)"
)


def _pool_of_a_command(env_pool: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != ARROW_POOL}
    if env_pool is not None:
        env[ARROW_POOL] = env_pool
    # a command that loads the store, then the pool pyarrow took when it was imported
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, "snapshots", "--store", "/nonexistent/store"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.stdout.strip(), done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(sys.platform != "linux", reason="lineage chooses jemalloc on Linux only")
def test_a_command_runs_with_jemalloc() -> None:
    """`lineage` sets Arrow's pool to jemalloc before the store imports pyarrow (pyarrow's default: mimalloc)."""
    assert _pool_of_a_command(None) == "jemalloc"


@pytest.mark.skipif(sys.platform != "linux", reason="lineage chooses jemalloc on Linux only")
def test_an_empty_choice_of_allocator_counts_as_none() -> None:
    """ARROW_DEFAULT_MEMORY_POOL set to nothing (a blank template value) still gives jemalloc."""
    assert _pool_of_a_command("") == "jemalloc"


@pytest.mark.parametrize("chosen", ["system", "mimalloc"])
def test_an_operators_choice_of_allocator_is_kept(chosen: str) -> None:
    """ARROW_DEFAULT_MEMORY_POOL set by the operator wins."""
    assert _pool_of_a_command(chosen) == chosen


def test_the_collector_runs_again_when_the_last_of_overlapping_pauses_ends() -> None:
    """Two threads' pauses overlap: still off after the first ends, on once both have."""
    assert gc.isenabled()
    assert overlapping_blocks(paused_gc, gc.isenabled) is False
    assert gc.isenabled()


class _Node:
    """An object that can be put in a cycle, and watched by a weak reference."""

    me: object = None


def _cycle() -> tuple[_Node, weakref.ref[_Node]]:
    node = _Node()
    node.me = node  # a cycle: only the collector frees it
    return node, weakref.ref(node)


def test_settling_the_heap_frees_cycles_then_leaves_the_living_out_of_collections() -> None:
    """settle_heap frees what is garbage in a cycle now, and moves what is alive out of the collector's walks."""
    gc.unfreeze()
    dead, dead_ref = _cycle()
    alive, _ = _cycle()
    del dead
    settle_heap()
    assert dead_ref() is None
    assert not any(o is alive for o in gc.get_objects())  # frozen: in no generation a collection walks


def test_a_settle_of_everything_frees_a_cycle_frozen_alive() -> None:
    """An object frozen alive that dies in a cycle is freed by settle_heap(everything=True), not by a settle."""
    gc.unfreeze()
    node, ref = _cycle()
    settle_heap()
    del node
    settle_heap()
    assert ref() is not None  # frozen when it died: the round's collection does not walk it
    settle_heap(everything=True)
    assert ref() is None


@pytest.mark.parametrize(
    ("files", "cores"),
    [
        ({}, 8),  # no cgroup files: the affinity
        ({"cpu.max": "max 100000\n"}, 8),
        ({"cpu.max": "200000 100000\n"}, 2),
        ({"cpu.max": "150000 100000\n"}, 2),  # 1.5 CPUs: two cores run it
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu.max": "3200000 100000\n"}, 8),  # a quota above the affinity: the affinity
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, 8),
        ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),
        ({"cpu.max": "nonsense\n"}, 8),
    ],
)
def test_usable_cores_are_the_affinity_capped_by_a_cgroup_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], cores: int
) -> None:
    """A container's CPU quota (cgroup v2 ``cpu.max`` or v1's quota and period) caps the cores the affinity gives."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(8)), raising=False)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert usable_cores(tmp_path) == cores
