"""Free ports for the development servers: from LINEAGE_PORT_RANGE when set, each test worker its own."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from lineage.devtools.ports import PORT_RANGE_ENV, free_port, port_is_free, port_range
from lineage.errors import ConfigurationError
from tests.conftest import PAIR_OFFSET, PORTS_LOW, PORTS_SPAN, _worker_port_range


def _listening(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", port))
    s.listen()
    return s


def _free_block(size: int) -> int:
    """The first of ``size`` consecutive free ports (within this worker's range, when it has one)."""
    high = (port_range() or (0, 65535))[1]
    low = free_port()
    while low + size - 1 > high or not all(port_is_free(p) for p in range(low, low + size)):
        low = free_port()
    return low


def test_ports_chosen_one_after_another_in_a_range_are_in_it_distinct_and_skip_a_taken_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Eight choices from a range of eight, none bound between them, one port listened on: the seven others."""
    low = _free_block(8)
    monkeypatch.setenv(PORT_RANGE_ENV, f"{low}-{low + 7}")
    with _listening(low + 3):
        chosen = [free_port() for _ in range(7)]
        assert sorted(chosen) == [p for p in range(low, low + 8) if p != low + 3]
        with pytest.raises(ConfigurationError, match=f"^{PORT_RANGE_ENV}: no free port among the 8 tried"):
            free_port(avoid=chosen)


def test_a_port_to_avoid_is_never_chosen_with_or_without_a_range(monkeypatch: pytest.MonkeyPatch) -> None:
    """``avoid`` names ports chosen but not yet bound: neither the kernel's choice nor the range's returns them."""
    monkeypatch.delenv(PORT_RANGE_ENV, raising=False)
    first = free_port()
    assert all(free_port(avoid={first}) != first for _ in range(50))
    low = _free_block(2)
    monkeypatch.setenv(PORT_RANGE_ENV, f"{low}-{low + 1}")
    assert [free_port(avoid={low}) for _ in range(5)] == [low + 1] * 5


@pytest.mark.parametrize("value", ["12000", "12000-", "a-b", "13000-12000", "80-90", "60000-70000"])
def test_a_range_that_is_not_low_dash_high_is_named_in_one_line(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """A bad LINEAGE_PORT_RANGE is a ConfigurationError naming the variable and the form it takes."""
    monkeypatch.setenv(PORT_RANGE_ENV, value)
    with pytest.raises(ConfigurationError, match=f"^{PORT_RANGE_ENV}: is '{value}'; expected LOW-HIGH"):
        free_port()


def test_each_test_worker_chooses_below_the_kernels_ephemeral_range_and_so_do_the_ports_paired_with_it() -> None:
    """The range of the worker running it lies in the workers' span, its ports + 10000 below the ephemeral range."""
    given = _worker_port_range()
    bounds = port_range()
    if given is None:
        assert bounds is None  # the kernel chooses, as it did before (or for a worker xdist restarted)
        return
    assert bounds is not None and f"{bounds[0]}-{bounds[1]}" == given
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    low, high = bounds
    assert PORTS_LOW <= low <= high < PORTS_LOW + PORTS_SPAN and high + PAIR_OFFSET < ephemeral_low
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    assert high - low + 1 == PORTS_SPAN // workers
    assert low <= free_port() <= high
