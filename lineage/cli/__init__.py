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

__all__ = ["COMMANDS", "INTERNAL_ERROR", "main", "run_command"]

#: each command and the module registering it (a test checks it against what they register): a process
#: imports the module of its command alone, not all eleven (~30 ms of a one-off ``lineage access``)
COMMANDS = {
    **dict.fromkeys(("emit", "tail"), "emit"),
    "broker": "broker",
    **dict.fromkeys(("ingest", "compact", "snapshots"), "ingest"),
    "graph": "graph",
    "holdings": "holdings",
    **dict.fromkeys(("access", "breach", "erasure", "transfers", "retention", "ropa", "check", "map"), "answers"),
    "forget": "forget",
    "retain": "retain",
    **dict.fromkeys(("sim", "demo"), "world"),
    **dict.fromkeys(("serve", "users"), "console"),
    "gateway": "gateway",
}
_GROUPS = tuple(dict.fromkeys(COMMANDS.values()))  # in the order ``lineage --help`` lists them


def _parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser: with ``argv`` naming a command, of that command's group alone; else of every command."""
    p = argparse.ArgumentParser(prog="lineage", description="Track where personal data goes.")
    sub = p.add_subparsers(dest="command", required=True)
    group = COMMANDS.get(argv[0]) if argv else None
    for name in (group,) if group is not None else _GROUPS:  # help, or a mistyped command: every choice
        importlib.import_module(f"lineage.cli.{name}").register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    prefer_jemalloc()  # before any command loads pyarrow
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser(argv).parse_args(argv)
    return run_command(lambda: int(args.func(args)))
