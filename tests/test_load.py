"""The load runner ``python -m tests.load``: burners beside a command, bounded, and the command's exit code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.fixtures import child_pids, wait_until

REPO = Path(__file__).parents[1]
SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def _load(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.load", *argv],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _burners_of(pid: int) -> list[int]:
    """Burner processes started by the runner ``pid`` (their command line names it), alive or not reaped."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 4 and argv[1] == b"-c" and b"getppid" in argv[2] and argv[4] == str(pid).encode():
            found.append(int(entry.name))
    return found


def test_the_command_runs_beside_burners_and_its_exit_code_is_returned() -> None:
    """Two burners run while the command does; the runner exits with the command's code and reports the load."""
    probe = "import time; time.sleep(30)"  # ended by the test once the burners are seen
    proc = _load("--burners", "2", "--", sys.executable, "-c", probe)
    wait_until(lambda: len(_burners_of(proc.pid)) == 2, "two burners")
    command = next(p for p in child_pids(proc.pid) if p not in _burners_of(proc.pid))
    os.kill(command, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "burners=2" in err and "load_1m min=" in err and "seconds=" in err, err
    assert _burners_of(proc.pid) == []
    exit3 = _load("--burners", "1", "--", sys.executable, "-c", "import sys; sys.exit(3)")
    _, err = exit3.communicate(timeout=60)
    assert exit3.returncode == 3 and "exit=3" in err, err


def test_burners_stop_after_max_seconds_and_ctrl_c_stops_everything() -> None:
    """Past --max-seconds the burners are gone while the command runs on; SIGINT then ends the runner with 130."""
    proc = _load("--burners", "2", "--max-seconds", "1", "--", *SLEEPER)
    wait_until(lambda: any(_is_sleeper(p) for p in child_pids(proc.pid)), "the command")
    command = next(p for p in child_pids(proc.pid) if _is_sleeper(p))
    wait_until(lambda: _burners_of(proc.pid) == [], "the burners' own stop")
    assert proc.poll() is None and _is_sleeper(command)  # the command runs on
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert not _is_sleeper(command)


def test_no_command_is_one_line_and_exit_2() -> None:
    """Without a command after ``--`` the runner says so on one line and exits 2."""
    proc = _load("--burners", "1")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err.strip().count("\n") == 0 and "no command" in err


def _is_sleeper(pid: int) -> bool:
    """Whether ``pid`` is a live ``SLEEPER`` process."""
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")[:3] == [a.encode() for a in SLEEPER]
    except OSError:
        return False
