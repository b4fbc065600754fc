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
import importlib
import sys
from collections.abc import Sequence

from lineage.cli.exits import INTERNAL_ERROR, run_command
from lineage.process import prefer_jemalloc

__all__ = ["INTERNAL_ERROR", "main", "run_command"]

#: each group module (in ``--help``'s order) and the commands it adds. A command's process imports
#: and registers its own group alone: all eleven cost 15-25 ms of every start, a tenth of a
#: ``lineage access`` (tests/cli/test_cli.py checks this against what the groups add)
GROUPS: dict[str, tuple[str, ...]] = {
    "emit": ("emit", "tail"),
    "broker": ("broker",),
    "ingest": ("ingest", "compact", "snapshots", "claim"),
    "graph": ("graph",),
    "holdings": ("holdings",),
    "answers": ("access", "breach", "erasure", "transfers", "retention", "ropa", "check", "map"),
    "forget": ("forget",),
    "retain": ("retain",),
    "world": ("sim", "demo"),
    "console": ("serve", "users"),
    "gateway": ("gateway",),
}


def _parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the one ``argv`` names first (the others unknown to it)."""
    p = argparse.ArgumentParser(prog="lineage", description="Track where personal data goes.")
    sub = p.add_subparsers(dest="command", required=True)
    first = next(iter(argv), None) if argv is not None else None
    named = [group for group, commands in GROUPS.items() if first in commands]
    for group in named or GROUPS:  # no command named (``--help``, a typo): all of them, for the message
        importlib.import_module(f"lineage.cli.{group}").register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    prefer_jemalloc()  # before any command loads pyarrow
    args_given = list(sys.argv[1:] if argv is None else argv)
    args = _parser(args_given).parse_args(args_given)
    return run_command(lambda: int(args.func(args)))
