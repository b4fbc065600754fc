"""The ``lineage`` command: one module per command group; ``main`` returns the exit code.

- ``emit``     emit, tail
- ``broker``   broker start / stop / fetch
- ``ingest``   ingest, graph, compact, snapshots
- ``holdings`` holdings (the table answers read, brought up to date)
- ``answers``  access, breach, erasure, transfers, retention, check, map
- ``world``    sim, demo
- ``console``  serve, users (the privacy console)
- ``gateway``  gateway serve / token / schema (the HTTP gateway)

Errors lineage raises, and files or folders the system refuses, become one line on stderr and exit
code 2; bad input lines in ``emit`` give exit code 1 after every good line has been sent. Anything
else is a bug: one line naming only its type (never its message, which may hold personal data) and
exit code 70; no raw traceback reaches a user.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lineage.cli import answers, broker, console, emit, gateway, holdings, ingest, world
from lineage.errors import LineageError

__all__ = ["INTERNAL_ERROR", "main"]

#: exit code of an unexpected error (EX_SOFTWARE): a bug, told apart from bad input (2)
INTERNAL_ERROR = 70


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lineage", description="Track where personal data goes.")
    sub = p.add_subparsers(dest="command", required=True)
    for group in (emit, broker, ingest, holdings, answers, world, console, gateway):
        group.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except LineageError as exc:
        print(f"lineage: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file or folder the system refused; the path is the user's own option
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"lineage: {where}{exc.strerror or type(exc).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one line, and never the message (it may hold a person's data)
        print(f"lineage: internal error ({type(exc).__name__}); please report it with the command", file=sys.stderr)
        return INTERNAL_ERROR


def _one_line(text: str) -> str:
    """The message on one line: a value with a newline in it must not forge a second line."""
    return " ".join(text.split("\n")).replace("\r", " ")
