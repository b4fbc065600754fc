"""The deployable ingest consumer: ``python -m consumers.ingest [--processes N] [options]``.

One process is ``lineage ingest`` (the same options, see ``lineage ingest --help``). With
``--processes N`` it is a small supervisor for one host: it starts N consumer processes in one
group, each with static membership ``<instance-id>-<i>`` (so a restarted process takes its
partitions straight back), restarts one that dies (with a backoff, and logs why), and on SIGTERM
or SIGINT passes the signal on and waits for each to finish its batch. Use it where a service
manager runs one unit per host; run ``lineage ingest`` directly where it runs one unit per process.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from lineage.cli import main as lineage_main
from lineage.cli._common import count
from lineage.cli.ingest import add_ingest_options

__all__ = ["main", "supervise"]

log = logging.getLogger("consumers.ingest")

_RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m consumers.ingest", description=__doc__.splitlines()[0])
    p.add_argument("--processes", type=count, default=1, help="consumer processes to run and keep running (default 1)")
    add_ingest_options(p)
    return p


def supervise(child_argv: Sequence[str], processes: int, instance_id: str) -> int:
    """Run ``processes`` consumers, restart those that die, stop them all on SIGTERM/SIGINT; return 0 or 1."""
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)

    def start(i: int) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "consumers.ingest", *child_argv, "--instance-id", f"{instance_id}-{i}"]
        return subprocess.Popen(argv)

    children = {i: start(i) for i in range(processes)}
    restarts = dict.fromkeys(children, 0)
    due: dict[int, float] = {}  # consumer -> when to start it again (no sleeping: the others need watching)
    signalled: set[int] = set()
    failed = False
    while children or (due and not stopping):
        time.sleep(0.2)
        for i, child in list(children.items()):
            code = child.poll()
            if code is None:
                if stopping and i not in signalled:  # once: the child finishes its batch and exits
                    child.send_signal(signal.SIGTERM)
                    signalled.add(i)
                continue
            del children[i]
            if stopping or code == 0:  # stopped, or --exit-when-idle ran out
                continue
            failed = True
            wait = _RESTART_BACKOFF_S[min(restarts[i], len(_RESTART_BACKOFF_S) - 1)]
            log.warning("consumer=%s exit_code=%s action=restart after_s=%s", i, code, wait)
            restarts[i] += 1
            due[i] = time.monotonic() + wait
        for i, when in list(due.items()):
            if stopping:
                due.clear()
            elif time.monotonic() >= when:
                del due[i]
                children[i] = start(i)
                failed = False
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one consumer in this process, or supervise ``--processes`` of them."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args_in = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(args_in)
    if args.processes == 1 or args.from_file:
        return lineage_main(["ingest", *_without(args_in, "--processes")])
    instance_id = args.instance_id or f"{socket.gethostname()}-{os.getpid()}"
    return supervise(_without(_without(args_in, "--processes"), "--instance-id"), args.processes, instance_id)


def _without(argv: list[str], option: str) -> list[str]:
    """``argv`` less ``option`` and its value (``--opt V`` or ``--opt=V``)."""
    out: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
        elif item == option:
            skip = True
        elif not item.startswith(option + "="):
            out.append(item)
    return out


if __name__ == "__main__":
    sys.exit(main())
