"""The audit key read from the embedded console database with sqlite3: the key the audit uses, or None."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from lineage.console.audit import Audit
from lineage.console.db import ConsoleDB
from lineage.console.keys import embedded_audit_key, keyed_digest


@pytest.fixture
def audited(tmp_path: Path) -> tuple[Path, Audit]:
    """An embedded console database whose audit made its key."""
    path = tmp_path / "console.db"
    db = ConsoleDB(f"sqlite:///{path}")
    audit = Audit(db)
    db.close()
    return path, audit


def test_the_key_read_with_sqlite3_hashes_as_the_audit_does(audited: tuple[Path, Audit]) -> None:
    """Same key, same keyed hash of an identifier."""
    path, audit = audited
    key = embedded_audit_key(path)
    assert key is not None and keyed_digest(key, "acct-1") == audit.subject_digest("acct-1")
    assert keyed_digest(key, "acct-1") != keyed_digest(key, "acct-2")


def test_no_key_yet_is_none(tmp_path: Path) -> None:
    """A database with no audit key (or no database at all): None, and the caller opens it as the console does."""
    path = tmp_path / "console.db"
    assert embedded_audit_key(path) is None
    ConsoleDB(f"sqlite:///{path}").close()
    assert embedded_audit_key(path) is None


@pytest.mark.parametrize("how", ["symlink", "group-writable", "not a database"])
def test_a_file_not_plainly_ours_is_not_read(audited: tuple[Path, Audit], tmp_path: Path, how: str) -> None:
    """A link, a file others may write, or a stray file: None (ConsoleDB then refuses or reports it)."""
    path, _ = audited
    if how == "symlink":
        link = tmp_path / "link.db"
        link.symlink_to(path)
        path = link
    elif how == "group-writable":
        os.chmod(path, 0o660)
    else:
        path.write_bytes(b"not sqlite at all" * 100)
        with pytest.raises(sqlite3.DatabaseError):
            sqlite3.connect(path).execute("SELECT 1 FROM console_meta").fetchone()
    assert embedded_audit_key(path) is None
