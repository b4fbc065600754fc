"""Server-side sessions: a random id in an HttpOnly SameSite=Strict cookie, stored only as its hash.

A new id is made at every sign-in (a session id planted before sign-in is never promoted), each
session has its own CSRF token, an idle timeout and an absolute lifetime, and sign-out deletes the
row, so a copied cookie is useless afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from lineage.console.db import ConsoleDB

__all__ = ["COOKIE", "Session", "Sessions"]

COOKIE = "lineage_session"
_ABSOLUTE_S = 12 * 3600.0
# last_seen is written at most this often: a write per page would serialise readers on SQLite
_TOUCH_EVERY_S = 30.0


@dataclass(frozen=True, slots=True)
class Session:
    """A live session: whose, and the CSRF token its forms must carry."""

    name: str
    csrf: str


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    """Sessions in the console database."""

    def __init__(self, db: ConsoleDB, idle_timeout_s: float = 15 * 60.0) -> None:
        """Use ``db``; a session unused for ``idle_timeout_s`` ends."""
        self.db = db
        self.idle_timeout_s = idle_timeout_s

    def start(self, name: str, client: str, old_id: str | None = None) -> tuple[str, Session]:
        """A fresh session for ``name`` (ending the one the browser had, if any): (its cookie value, session)."""
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = time.time()
        with self.db.tx() as tx:
            if old_id:
                tx.run("DELETE FROM console_sessions WHERE id_hash = :h", {"h": _digest(old_id)})
            tx.run("DELETE FROM console_sessions WHERE last_seen < :t", {"t": now - self.idle_timeout_s})
            tx.run(
                "INSERT INTO console_sessions (id_hash, name, csrf, created_at, last_seen, client) "
                "VALUES (:h, :n, :c, :now, :now, :client)",
                {"h": _digest(session_id), "n": name, "c": csrf, "now": now, "client": client[:100]},
            )
        return session_id, Session(name, csrf)

    def get(self, session_id: str | None) -> Session | None:
        """The live session a cookie names, refreshing its idle clock; None when unknown or expired."""
        if not session_id or len(session_id) > 100:
            return None
        now = time.time()
        h = _digest(session_id)
        with self.db.tx() as tx:
            row = tx.one("SELECT name, csrf, created_at, last_seen FROM console_sessions WHERE id_hash = :h", {"h": h})
            if row is None:
                return None
            if now - row["last_seen"] > self.idle_timeout_s or now - row["created_at"] > _ABSOLUTE_S:
                tx.run("DELETE FROM console_sessions WHERE id_hash = :h", {"h": h})
                return None
            if now - row["last_seen"] > _TOUCH_EVERY_S:
                tx.run("UPDATE console_sessions SET last_seen = :now WHERE id_hash = :h", {"now": now, "h": h})
        return Session(row["name"], row["csrf"])

    def end(self, session_id: str | None) -> None:
        """Delete the session: its cookie no longer signs anyone in."""
        if session_id:
            with self.db.tx() as tx:
                tx.run("DELETE FROM console_sessions WHERE id_hash = :h", {"h": _digest(session_id)})


def same_token(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
