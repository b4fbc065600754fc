"""Log records for operators: one line each, an exception as its type and message, never a stack."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

from lineage.logs import OneLineFormatter


def _record_of_a_failure(stream: io.StringIO) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter("%(levelname)s %(name)s %(message)s"))
    log = logging.getLogger("tests.logs.one_line")
    log.propagate = False
    log.addHandler(handler)
    try:
        try:
            raise KeyError("not registered")
        except KeyError:
            raise ValueError("Invalid file descriptor: -1") from None
    except ValueError:
        log.exception("Unhandled exception in task")
    finally:
        log.removeHandler(handler)


def test_an_exception_is_logged_as_one_line_naming_its_type_and_message() -> None:
    """A record with an exception is one line: the message, then the exception's type and text, no traceback."""
    stream = io.StringIO()
    _record_of_a_failure(stream)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("ERROR tests.logs.one_line Unhandled exception in task | ValueError: Invalid file")
    assert "Traceback" not in lines[0] and "test_logs.py:" in lines[0]


def test_a_process_configured_by_lineage_logs_a_library_failure_without_a_traceback() -> None:
    """``configure_logging`` (every lineage process sets it up): a library's exception reaches stderr as one line."""
    code = (
        "import logging\n"
        "from lineage.logs import configure_logging\n"
        "configure_logging()\n"
        "try:\n"
        "    raise ValueError('Invalid file descriptor: -1')\n"
        "except ValueError:\n"
        "    logging.getLogger('kafka.net.selector').exception('Unhandled exception in task')\n"
        "logging.getLogger('lineage.ingest').info('still one line per record')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    assert "kafka.net.selector Unhandled exception in task | ValueError: Invalid file descriptor: -1" in lines[0]
    assert "Traceback" not in done.stderr
    assert lines[1].endswith("INFO lineage.ingest still one line per record")


def test_control_characters_in_a_message_are_escaped_so_it_cannot_forge_a_line() -> None:
    """A newline, ESC or U+202E in a logged value is shown escaped: the record stays one line."""
    formatter = OneLineFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '"GET %s HTTP/1.1" 404',
                               ("/a\nERROR lineage forged \x1b[2J \u202eabc",), None)  # fmt: skip
    line = formatter.format(record)
    assert line == r'INFO "GET /a\x0aERROR lineage forged \x1b[2J \u202eabc HTTP/1.1" 404', line
