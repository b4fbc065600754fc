"""How a command ends: its exit code, or one line on stderr and the code that says what went wrong.

Errors lineage raises, and files or folders the system refuses, become one line and exit code 2;
Ctrl-C 130; anything else is a bug: one line naming only its type (never its message, which may
hold personal data) and exit code 70. No raw traceback reaches a user. Public, and free of the
command groups, so a deployable process (``consumers.ingest``) ends the same way without loading them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from lineage.errors import LineageError

__all__ = ["INTERNAL_ERROR", "run_command"]

#: exit code of an unexpected error (EX_SOFTWARE): a bug, told apart from bad input (2)
INTERNAL_ERROR = 70


def run_command(command: Callable[[], int]) -> int:
    """Run ``command`` as ``lineage`` runs each of its own: its exit code, or one line on stderr and 2, 130 or 70."""
    try:
        return command()
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
