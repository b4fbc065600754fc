"""Arrow's allocator in lineage's processes, and the collector paused (lineage/process.py)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref

import pytest

from lineage.process import ARROW_POOL, paused_gc, settle_heap
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
