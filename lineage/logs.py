"""Log lines for people: every process's logging set up in one place, one line per record.

A library's log record may carry an exception (kafka-python's network loop logs "Unhandled exception
in task" with its traceback when a socket closes under a pending read during shutdown). A raw
traceback in an operator's log is noise that reads as a crash, and may quote a message's content, so
the exception is rendered as one line: its type and message, last frame's place, no stack.
"""

from __future__ import annotations

import logging
import traceback
from types import TracebackType

__all__ = ["OneLineFormatter", "configure_logging"]

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


class OneLineFormatter(logging.Formatter):
    """A formatter whose exceptions are one line: ``ValueError: ... (at selectors.py:42)``, never a stack."""

    def formatException(self, ei: _ExcInfo) -> str:  # noqa: N802 (logging's name)
        """The exception's type, message (whitespace folded, bounded) and where it was raised."""
        kind, exc, tb = ei
        if kind is None:
            return ""
        where = ""
        frames = traceback.extract_tb(tb) if tb is not None else []
        if frames:
            last = frames[-1]
            where = f" (at {last.filename.rpartition('/')[2]}:{last.lineno})"
        text = " ".join(str(exc).split())[:300]
        return f"{kind.__name__}: {text}{where}" if text else f"{kind.__name__}{where}"

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 (logging's name)
        """No stack: ``stack_info=True`` asks for a developer's view, not an operator's."""
        return ""

    def format(self, record: logging.LogRecord) -> str:
        """The record on one line, its exception (if any) after a `` | ``."""
        if not (record.exc_info or record.exc_text or record.stack_info):
            return super().format(record)
        record.exc_text = None  # another formatter may have cached a whole traceback on the record
        return super().format(record).replace("\n", " | ")


def configure_logging(level: int = logging.INFO, fmt: str = "%(asctime)s %(levelname)s %(name)s %(message)s") -> None:
    """``logging.basicConfig`` with one-line records on stderr; a no-op when the root logger already has handlers."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter(fmt))
    root.addHandler(handler)
    root.setLevel(level)
