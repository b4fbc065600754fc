"""private_files across threads: overlapping blocks keep files private until the last one ends."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from lineage.private import private_files
from tests.fixtures import overlapping_blocks


def test_a_thread_leaving_its_block_first_does_not_loosen_another_threads_files(tmp_path: Path) -> None:
    """Thread 1 enters, thread 2 enters, thread 1 leaves, thread 2 writes: still 0600; the umask comes back after."""
    written = tmp_path / "written-after-the-first-left"

    def write() -> int:
        written.write_text("x")
        return stat.S_IMODE(written.stat().st_mode)

    old = os.umask(0o022)
    try:
        assert overlapping_blocks(private_files, write) == 0o600
        assert os.umask(0o022) == 0o022  # put back once both blocks ended
    finally:
        os.umask(old)
