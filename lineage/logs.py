"""Log lines for people: every process's logging set up in one place, one line per record.

A library's log record may carry an exception (kafka-python's network loop logs "Unhandled exception
in task" with its traceback when a socket closes under a pending read during shutdown). A raw
traceback in an operator's log is noise that reads as a crash, and may quote a message's content, so
the exception is rendered as one line: its type and message, last frame's place, no stack.

A message may quote what a client sent (a path, a header, a field name). Control characters in it
(newline, ESC, bidirectional overrides) are escaped, so a crafted value cannot forge a line of its own.
"""

from __future__ import annotations

import logging
import re
import traceback
from types import TracebackType

__all__ = ["OneLineFormatter", "configure_logging"]

# C0 controls, DEL, C1 controls and the bidirectional overrides and isolates, each shown as an escape.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escaped(text: str) -> str:
    return _UNSAFE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


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
        text = _escaped(" ".join(str(exc).split())[:300])
        return f"{kind.__name__}: {text}{where}" if text else f"{kind.__name__}{where}"

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 (logging's name)
        """No stack: ``stack_info=True`` asks for a developer's view, not an operator's."""
        return ""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        """The formatted message with its control characters escaped: a newline in it never starts a line."""
        return _escaped(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        """The record on one line, its exception (if any) after a `` | ``."""
        record.exc_text = None  # another formatter may have cached a whole traceback on the record
        return super().format(record).rstrip("\n").replace("\n", " | ")


def configure_logging(level: int = logging.INFO, fmt: str = "%(asctime)s %(levelname)s %(name)s %(message)s") -> None:
    """``logging.basicConfig`` with one-line records on stderr; a no-op when the root logger already has handlers."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter(fmt))
    root.addHandler(handler)
    root.setLevel(level)
