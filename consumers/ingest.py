"""The deployable ingest consumer: ``python -m consumers.ingest [--processes N] [options]``.

One process is ``lineage ingest`` (the same options, see ``lineage ingest --help``). With
``--processes N`` it is a small supervisor for one host: it starts N consumer processes in one
group, each with static membership ``<instance-id>-<i>`` (so a restarted process takes its
partitions straight back), restarts one that dies (with a backoff, and logs why), and on SIGTERM
or SIGINT passes the signal on and waits for each to finish its batch. Beside them it runs one holdings
maintainer (``consumers.holdings``, restarted the same way; not with ``--no-holdings``), and once the
consumers have stopped it brings the holdings up to date one last time. Use it where a service
manager runs one unit per host; run ``lineage ingest`` directly where it runs one unit per process.
"""

# ruff: noqa: E402 - the imports come after the stop signals are held, on purpose
from __future__ import annotations

# first, before anything slow loads: a SIGTERM from here on waits for the handlers the command installs
# (importing this module starts the program: see consumers.stopping)
from consumers import stopping

stopping.hold()

import argparse
import dataclasses
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from lineage.cli.exits import run_command
from lineage.cli.ingest import IngestOptions, add_ingest_options, refresh_holdings, run_ingest
from lineage.cli.options import count
from lineage.errors import LineageError

__all__ = ["main", "supervise"]

log = logging.getLogger("consumers.ingest")

_RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m consumers.ingest", description=__doc__.splitlines()[0])
    p.add_argument("--processes", type=count, default=1, help="consumer processes to run and keep running (default 1)")
    add_ingest_options(p)
    return p


HOLDINGS = "holdings"  # the supervised holdings maintainer's name beside the consumers' numbers


def supervise(
    options: IngestOptions, processes: int, instance_id: str, holdings: Sequence[str] | None = None
) -> int:
    """Run ``processes`` consumers with ``options``, restart those that die, stop them all on SIGTERM/SIGINT; 0 or 1.

    Consumer ``i`` is a member of the group with the static id ``<instance_id>-<i>``. With
    ``holdings`` (store options), also one holdings maintainer (``consumers.holdings``), restarted
    the same way; it is stopped once no consumer is left.
    """
    stop = stopping.stop_on_signals()
    done = False  # every consumer is done: set here, never through ``stop`` (its handler may run meanwhile)

    def start(name: str) -> subprocess.Popen[bytes]:
        # held signals: a child stopped while it starts stops cleanly (exit 0), never by SIGTERM's default action
        if name == HOLDINGS:
            return stopping.spawn([sys.executable, "-m", "consumers.holdings", *(holdings or ())])
        child = dataclasses.replace(options, instance_id=f"{instance_id}-{name}")
        return stopping.spawn([sys.executable, "-m", "consumers.ingest", *child.argv()])

    names = [str(i) for i in range(processes)] + ([HOLDINGS] if holdings is not None else [])
    children = {name: start(name) for name in names}
    restarts = dict.fromkeys(children, 0)
    due: dict[str, float] = {}  # process -> when to start it again (no sleeping: the others need watching)
    signalled: set[str] = set()
    failed = False
    while children or (due and not (done or stop.is_set())):
        time.sleep(0.2)
        if not any(name != HOLDINGS for name in (*children, *due)):
            done = True  # every consumer is done (idle): the maintainer's work is done too
        ending = done or stop.is_set()
        for name, child in list(children.items()):
            code = child.poll()
            if code is None:
                if ending and name not in signalled:  # once: the child finishes its batch and exits
                    child.send_signal(signal.SIGTERM)
                    signalled.add(name)
                continue
            del children[name]
            if ending or code == 0:  # stopped, or --exit-when-idle ran out
                continue
            failed = True
            wait = _RESTART_BACKOFF_S[min(restarts[name], len(_RESTART_BACKOFF_S) - 1)]
            kind = "holdings maintainer" if name == HOLDINGS else "consumer"
            log.warning("%s=%s exit_code=%s action=restart after_s=%s", kind, name, code, wait)
            restarts[name] += 1
            due[name] = time.monotonic() + wait
        for name, when in list(due.items()):
            if ending:
                due.clear()
            elif time.monotonic() >= when:
                del due[name]
                children[name] = start(name)
                failed = False
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one consumer in this process, or supervise ``--processes`` of them."""
    from lineage.logs import configure_logging
    from lineage.process import prefer_jemalloc

    prefer_jemalloc()  # before the store loads pyarrow; the children inherit it
    configure_logging(logging.INFO)
    args = _parser().parse_args(argv)
    options = IngestOptions.from_args(args)
    if args.processes == 1 or options.from_file:
        return run_command(lambda: run_ingest(options))
    instance_id = options.instance_id or f"{socket.gethostname()}-{os.getpid()}"
    if not options.holdings:
        return supervise(options, args.processes, instance_id)
    # the consumers leave the holdings to the one maintainer beside them, and to the refresh at the end
    consumers = dataclasses.replace(options, holdings=False)
    code = supervise(consumers, args.processes, instance_id, options.store_argv())
    try:
        refresh_holdings(options)  # what the consumers stored after the maintainer's last refresh
    except LineageError as exc:
        print(f"lineage-ingest: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    code = main()
    stopping.hold()  # the work is done: a stop now must not meet the default action Python restores on exit
    sys.exit(code)
