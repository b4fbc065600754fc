"""The ``lineage`` command: one module per command group; ``main`` returns the exit code.

- ``emit``     emit, tail
- ``broker``   broker start / stop / fetch
- ``ingest``   ingest, compact, snapshots
- ``graph``    graph (the flow graph, summarised and exported)
- ``holdings`` holdings (the table answers read, brought up to date)
- ``answers``  access, breach, erasure, transfers, retention, check, map
- ``forget``   forget (a person out of the store itself, with a certificate)
- ``retain``   retain (store retention: events older than a cut-off out of the store)
- ``world``    sim, demo
- ``console``  serve, users (the privacy console)
- ``gateway``  gateway serve / token / schema (the HTTP gateway)

Errors lineage raises, and files or folders the system refuses, become one line on stderr and exit
code 2; bad input lines in ``emit`` give exit code 1 after every good line has been sent. Anything
else is a bug: one line naming only its type (never its message, which may hold personal data) and
exit code 70; no raw traceback reaches a user (``exits.run_command``, public for ``consumers/``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from lineage.cli import answers, broker, console, emit, forget, gateway, graph, holdings, ingest, retain, world
from lineage.cli.exits import INTERNAL_ERROR, run_command
from lineage.process import prefer_jemalloc

__all__ = ["INTERNAL_ERROR", "main", "run_command"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lineage", description="Track where personal data goes.")
    sub = p.add_subparsers(dest="command", required=True)
    for group in (emit, broker, ingest, graph, holdings, answers, forget, retain, world, console, gateway):
        group.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    prefer_jemalloc()  # before any command loads pyarrow
    args = _parser().parse_args(argv)
    return run_command(lambda: int(args.func(args)))
