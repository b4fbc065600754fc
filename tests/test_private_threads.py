"""private_files across threads: overlapping blocks keep files private until the last one ends."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from lineage.private import private_files


def test_a_thread_leaving_its_block_first_does_not_loosen_another_threads_files(tmp_path: Path) -> None:
    """Thread 1 enters, thread 2 enters, thread 1 leaves, thread 2 writes: still 0600; the umask comes back after."""
    one_in, two_in, one_out = threading.Event(), threading.Event(), threading.Event()
    written = tmp_path / "written-after-the-first-left"

    def one() -> None:
        with private_files():
            one_in.set()
            two_in.wait(10)
        one_out.set()

    def two() -> None:
        one_in.wait(10)
        with private_files():
            two_in.set()
            one_out.wait(10)
            written.write_text("x")

    old = os.umask(0o022)
    try:
        threads = [threading.Thread(target=one), threading.Thread(target=two)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
        assert os.umask(0o022) == 0o022  # put back once both blocks ended
    finally:
        os.umask(old)
