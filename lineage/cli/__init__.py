"""The ``lineage`` command: one module per command group; ``main`` returns the exit code.

- ``emit``     emit, tail
- ``broker``   broker start / stop / fetch
- ``ingest``   ingest, graph, compact
- ``answers``  access, breach, erasure, transfers, retention, check, map
- ``world``    sim, demo

Errors lineage raises become one line on stderr and exit code 2; bad input lines in ``emit`` give
exit code 1 after every good line has been sent.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lineage.cli import answers, broker, emit, ingest, world
from lineage.errors import LineageError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lineage", description="Track where personal data goes.")
    sub = p.add_subparsers(dest="command", required=True)
    for group in (emit, broker, ingest, answers, world):
        group.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except LineageError as exc:
        print(f"lineage: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
