"""Run a command beside CPU-burning processes: ``python -m tests.load --burners 2 -- CMD...``.

CI runs on busy 2-core machines (load average 6-27), where a test that waits a fixed time fails
and one that waits on a condition passes. This makes such a machine on purpose: N processes that
spin on a core each, bounded three ways (they stop when CMD ends, after ``--max-seconds``, and on
Ctrl-C, each also stopping on its own if this process dies). It prints the load average seen while
CMD ran (sampled every few seconds) and CMD's duration, and exits with CMD's exit code.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

__all__ = ["main"]

# a burner: spin until its deadline, or until its parent (this process) is gone
_BURN = """
import os, sys, time
deadline, parent = float(sys.argv[1]), int(sys.argv[2])
while time.time() < deadline and os.getppid() == parent:
    for _ in range(200_000):
        pass
"""
_SAMPLE_S = 2.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.load", description=__doc__.splitlines()[0])
    p.add_argument("--burners", type=int, default=os.cpu_count() or 1, help="CPU-burning processes (default: cores)")
    p.add_argument("--max-seconds", type=float, default=3600.0, help="burners stop after this long (default 3600)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD...: the command to run under load")
    return p


def burners(n: int, max_seconds: float) -> list[subprocess.Popen[bytes]]:
    """Start ``n`` CPU burners that stop by themselves after ``max_seconds`` or when this process dies."""
    deadline = str(time.time() + max_seconds)
    return [
        subprocess.Popen([sys.executable, "-c", _BURN, deadline, str(os.getpid())], stdin=subprocess.DEVNULL)
        for _ in range(n)
    ]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command under load; its exit code (128 + N when a signal N ended it)."""
    args = _parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("tests.load: no command: give one after --", file=sys.stderr)
        return 2
    if args.burners < 0 or args.max_seconds <= 0:
        print("tests.load: --burners must be 0 or more and --max-seconds above 0", file=sys.stderr)
        return 2
    loads: list[float] = []
    started = time.monotonic()
    burning = burners(args.burners, args.max_seconds)
    try:
        cmd = subprocess.Popen(command)
        try:
            while True:
                try:
                    code = cmd.wait(_SAMPLE_S)
                    break
                except subprocess.TimeoutExpired:
                    loads.append(os.getloadavg()[0])
        except KeyboardInterrupt:  # Ctrl-C reached the command too (same terminal); if not, pass it on
            if cmd.poll() is None:
                cmd.send_signal(signal.SIGINT)
            code = cmd.wait()
    finally:
        _stop(burning)
    seconds = time.monotonic() - started
    seen = loads or [os.getloadavg()[0]]
    print(
        f"tests.load: burners={args.burners} seconds={seconds:.1f} exit={code} "
        f"load_1m min={min(seen):.1f} mean={sum(seen) / len(seen):.1f} max={max(seen):.1f} cores={os.cpu_count()}",
        file=sys.stderr,
    )
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main())
