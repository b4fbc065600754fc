"""The audit key's hash of an identifier, and the embedded console database's key read without SQLAlchemy.

A one-off ``lineage access`` on a store where someone was forgotten hashes the identifier to find its
certificate. Opening the console database through SQLAlchemy for that one row cost ~0.17 s of imports;
``sqlite3`` reads it in a millisecond. Anything unexpected (no key yet, a file not plainly ours) is
``None``, and the caller opens the database as the console does (which makes the key when missing).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import stat
from pathlib import Path
from urllib.parse import quote

__all__ = ["embedded_audit_key", "keyed_digest"]


def keyed_digest(key: bytes, identifier: str) -> str:
    """The keyed hash (HMAC-SHA256) that the audit's Kafka copy and the certificates carry for ``identifier``."""
    return hmac.new(key, identifier.encode(), hashlib.sha256).hexdigest()


def embedded_audit_key(path: Path) -> bytes | None:
    """The audit key kept in the SQLite console database at ``path``; None: none there, or a file not plainly ours."""
    try:
        found = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(found.st_mode) or found.st_uid != os.geteuid() or found.st_mode & 0o022:
        return None  # a link, or a file someone else may have written: ConsoleDB opens (and refuses) it
    try:
        con = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT value FROM console_meta WHERE key = 'audit_key'").fetchone()
        finally:
            con.close()
        return None if row is None else bytes.fromhex(str(row[0]))
    except (sqlite3.Error, ValueError):
        return None
