"""The console's database (its only SQLAlchemy module): accounts, sessions, sign-ins, audit, cases, breaches, registers.

Embedded by default (a SQLite file, mode 600, beside the store's catalog) or PostgreSQL for many
hosts (``console_db``; the password only from ``LINEAGE_CONSOLE_DB_PASSWORD`` or its ``_FILE``).
Every query is parameterised text; the audit table refuses UPDATE and DELETE by trigger in both,
but for one narrow UPDATE: a subject in clear replaced by its keyed hash, when the person is forgotten
(``lineage.console.erasure``). SQLite zeroes freed pages (``secure_delete``) on every connection.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from lineage.errors import ConfigurationError, InvalidEventError, LineageError

if TYPE_CHECKING:
    from lineage.settings import Settings
    from lineage.store.catalog import StoreLocation

__all__ = ["HASHED", "ConsoleDB", "ConsoleDBError", "Tx", "console_db", "hashed_subject"]

_TABLES = """
CREATE TABLE IF NOT EXISTS console_users (
  name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL, must_change INTEGER NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
  locked_until DOUBLE PRECISION NOT NULL DEFAULT 0, created_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS console_tokens (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
  created_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION);
CREATE TABLE IF NOT EXISTS console_sessions (
  id_hash TEXT PRIMARY KEY, name TEXT NOT NULL, csrf TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
  last_seen DOUBLE PRECISION NOT NULL, client TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS console_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS console_signins (
  name TEXT PRIMARY KEY, failures INTEGER NOT NULL, locked_until DOUBLE PRECISION NOT NULL,
  last_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS console_cases (
  case_ref TEXT PRIMARY KEY, kind TEXT NOT NULL, subject_digest TEXT NOT NULL, received TEXT NOT NULL,
  regimes TEXT NOT NULL, due TEXT NOT NULL, status TEXT NOT NULL, status_by TEXT NOT NULL, status_at TEXT NOT NULL,
  assignee TEXT, opened_by TEXT NOT NULL, opened_at TEXT NOT NULL, answer TEXT NOT NULL, answered_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS console_cases_due ON console_cases (due);
CREATE TABLE IF NOT EXISTS console_breaches (
  id TEXT PRIMARY KEY, owner TEXT NOT NULL, case_ref TEXT NOT NULL, holders TEXT NOT NULL, t1 TEXT NOT NULL,
  t2 TEXT NOT NULL, aware TEXT, runner TEXT NOT NULL, started DOUBLE PRECISION NOT NULL, finished DOUBLE PRECISION,
  status TEXT NOT NULL, error TEXT, records INTEGER NOT NULL DEFAULT 0, summary TEXT, plan TEXT);
CREATE INDEX IF NOT EXISTS console_breaches_owner ON console_breaches (owner, started);
CREATE TABLE IF NOT EXISTS console_breach_affected (
  breach_id TEXT NOT NULL, seq INTEGER NOT NULL, subject TEXT NOT NULL, jurisdiction TEXT, age_band TEXT,
  category TEXT NOT NULL, holder TEXT NOT NULL, reached_at TEXT NOT NULL, encrypted INTEGER NOT NULL,
  PRIMARY KEY (breach_id, seq));
CREATE TABLE IF NOT EXISTS console_registers (
  key TEXT PRIMARY KEY, snapshot BIGINT, holdings_snapshot BIGINT, erasures TEXT, computed DOUBLE PRECISION NOT NULL,
  body TEXT NOT NULL);
"""
_AUDIT_COLUMNS = (
    "at TEXT NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL, "
    "subject TEXT, case_ref TEXT, client TEXT NOT NULL, outcome TEXT NOT NULL"
)
#: how a forgotten person's identifier reads once replaced: this, then its keyed hash (64 hex digits)
HASHED = "hmac-sha256:"
_KEPT = ("seq", "at", "actor", "role", "action", "detail", "case_ref", "client", "outcome")  # all but subject
# The one UPDATE the trail allows: a subject in clear (not already hashed) to HASHED and 64 hex
# digits, every other column as it was. The trigger cannot check that the hash is of that identifier
# (the key is not the database's to use): the app's one path does (lineage.console.erasure).
_SQLITE_REDACTION = (
    " AND ".join(f"NEW.{c} IS OLD.{c}" for c in _KEPT)
    + f" AND OLD.subject IS NOT NULL AND substr(OLD.subject, 1, {len(HASHED)}) <> '{HASHED}'"
    + f" AND substr(NEW.subject, 1, {len(HASHED)}) = '{HASHED}' AND length(NEW.subject) = {len(HASHED) + 64}"
    + f" AND substr(NEW.subject, {len(HASHED) + 1}) NOT GLOB '*[^0-9a-f]*'"
)
_POSTGRES_REDACTION = (
    f"ROW({', '.join(f'NEW.{c}' for c in _KEPT)}) IS NOT DISTINCT FROM ROW({', '.join(f'OLD.{c}' for c in _KEPT)})"
    f" AND OLD.subject IS NOT NULL AND left(OLD.subject, {len(HASHED)}) <> '{HASHED}'"
    f" AND NEW.subject ~ '^{HASHED}[0-9a-f]{{64}}$'"
)
_SQLITE_AUDIT = [
    f"CREATE TABLE IF NOT EXISTS console_audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, {_AUDIT_COLUMNS})",
    # a new name for a new rule (give it another if the rule changes: IF NOT EXISTS keeps an old one);
    # made before the old trigger, which refused every UPDATE, is dropped: never a moment without either
    f"""CREATE TRIGGER IF NOT EXISTS console_audit_only_redaction BEFORE UPDATE ON console_audit
       WHEN NOT ({_SQLITE_REDACTION}) BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
    "DROP TRIGGER IF EXISTS console_audit_no_update",
    """CREATE TRIGGER IF NOT EXISTS console_audit_no_delete BEFORE DELETE ON console_audit
       BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
]
# a trigger per statement kind; TRUNCATE bypasses row triggers, so it has its own
_POSTGRES_AUDIT = [
    f"CREATE TABLE IF NOT EXISTS console_audit (seq BIGSERIAL PRIMARY KEY, {_AUDIT_COLUMNS})",
    f"""CREATE OR REPLACE FUNCTION console_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS
       $$ BEGIN
         IF TG_OP = 'UPDATE' AND {_POSTGRES_REDACTION} THEN RETURN NEW; END IF;
         RAISE EXCEPTION 'the audit trail is append-only';
       END $$""",
    "DROP TRIGGER IF EXISTS console_audit_no_change ON console_audit",
    """CREATE TRIGGER console_audit_no_change BEFORE UPDATE OR DELETE ON console_audit
       FOR EACH ROW EXECUTE FUNCTION console_audit_refuse()""",
    "DROP TRIGGER IF EXISTS console_audit_no_truncate ON console_audit",
    """CREATE TRIGGER console_audit_no_truncate BEFORE TRUNCATE ON console_audit
       FOR EACH STATEMENT EXECUTE FUNCTION console_audit_refuse()""",
]


def hashed_subject(digest: str) -> str:
    """What a forgotten person's identifier becomes in the console database: its keyed hash, marked as one."""
    return HASHED + digest


class ConsoleDBError(LineageError):
    """The console database cannot be opened or refused a statement."""


class Tx:
    """One transaction: parameterised statements and rows as dicts."""

    def __init__(self, con: Connection) -> None:
        """Wrap an open connection inside its transaction."""
        self._con = con

    def run(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement; the number of rows it changed."""
        return int(self._con.execute(sa.text(sql), _without_nul(params)).rowcount)

    def run_many(self, sql: str, rows: list[dict[str, Any]]) -> None:
        """Run a statement once per row, in one round of the driver's executemany."""
        if rows:
            self._con.execute(sa.text(sql), [_without_nul(r) for r in rows])

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The rows a query returns."""
        return [dict(r._mapping) for r in self._con.execute(sa.text(sql), _without_nul(params))]

    def one(self, sql: str, params: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The first row, or None."""
        found = self.rows(sql, params)
        return found[0] if found else None


def _without_nul(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parameters, a text holding NUL refused on both backends alike.

    PostgreSQL's text cannot hold NUL: psycopg2 raised a ValueError (an internal error, on the
    sign-in form for anyone), while SQLite stored it. The value is never shown: it may be an identifier.
    """
    found = dict(params or {})
    for name, value in found.items():
        if isinstance(value, str) and "\x00" in value:
            raise InvalidEventError(name, value, "must not hold a NUL character", personal=True)
    return found


class ConsoleDB:
    """The console's tables in SQLite (embedded) or PostgreSQL (shared by many hosts)."""

    def __init__(self, uri: str, password: str | None = None) -> None:
        """Open (creating the tables if needed); a SQLite file is created mode 600, never through a link."""
        url = make_url(uri)
        self.kind = "postgresql" if url.get_backend_name() == "postgresql" else "sqlite"
        if self.kind == "sqlite":
            if not url.database or url.database == ":memory:":
                raise ConfigurationError("console_db", "a SQLite console database must be a file")
            _create_private(Path(url.database))
        elif password is not None:
            url = url.set(password=password)
        self.described = url.render_as_string(hide_password=True)
        args = {"timeout": 30, "check_same_thread": False} if self.kind == "sqlite" else {}
        self._engine: Engine = sa.create_engine(url, connect_args=args, pool_pre_ping=self.kind == "postgresql")
        if self.kind == "sqlite":
            sa.event.listen(self._engine, "connect", _sqlite_pragmas)
        try:
            with self.tx() as tx:
                for statement in _statements(self.kind):
                    tx.run(statement)
        except sa.exc.SQLAlchemyError as exc:
            raise ConsoleDBError(f"console_db: cannot open {self.described}: {_reason(exc)}") from None

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        """A transaction, committed when the block ends and rolled back on an error."""
        try:
            with self._engine.begin() as con:
                yield Tx(con)
        except sa.exc.SQLAlchemyError as exc:
            raise ConsoleDBError(f"console database: {_reason(exc)}") from None

    def reclaim(self, tables: Sequence[str]) -> str:
        """Rewrite the database so values replaced or deleted leave no bytes in its files; what was done.

        SQLite: freed pages are zeroed already (``secure_delete``); VACUUM rebuilds the file, then a
        TRUNCATE checkpoint copies it back and empties the write-ahead log, which held the old pages.
        PostgreSQL: an UPDATE leaves the old row in the table's file until a vacuum; VACUUM FULL writes
        ``tables`` (our names, never input) and their TOAST to new files, as their owner (the console
        creates and alters them on opening, which only an owner may). The server's WAL, archives and
        backups keep the old rows until they are recycled or expire: the return says so.
        """
        try:
            with self._engine.connect() as plain:
                con = plain.execution_options(isolation_level="AUTOCOMMIT")  # neither VACUUM runs in a transaction
                if self.kind == "sqlite":
                    con.execute(sa.text("VACUUM"))
                    busy = con.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)")).one()[0]
                    if busy:
                        raise ConsoleDBError("console database: a reader kept the write-ahead log: run forget again")
                    return "VACUUM, write-ahead log emptied"
                con.execute(sa.text(f"VACUUM FULL {', '.join(tables)}"))
                return f"VACUUM FULL {', '.join(tables)} (the server's WAL keeps the old rows until recycled)"
        except sa.exc.SQLAlchemyError as exc:
            raise ConsoleDBError(f"console database: {_reason(exc)}") from None

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()


def console_db(settings: Settings, location: StoreLocation) -> ConsoleDB:
    """The console database the settings name: ``console_db``, or ``console.db`` in the embedded store's folder."""
    if settings.console_db is not None:
        return ConsoleDB(settings.console_db, settings.console_db_password)
    if location.root is None:
        raise ConfigurationError(
            "console_db", "is required with a shared catalog: postgresql+psycopg2://user@host/db (LINEAGE_CONSOLE_DB)"
        )
    root = Path(location.root)
    if not root.is_dir():
        raise ConfigurationError("--store", f"{root} is not a folder (no lineage store there)")
    return ConsoleDB(f"sqlite:///{(root / 'console.db').resolve()}")


def _statements(kind: str) -> list[str]:
    base = [s.strip() for s in _TABLES.split(";") if s.strip()]
    return base + (_POSTGRES_AUDIT if kind == "postgresql" else _SQLITE_AUDIT)


def _sqlite_pragmas(con: Any, _record: Any) -> None:
    # WAL: readers do not wait for the one writer; a busy writer waits instead of failing at once
    cur = con.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA secure_delete=ON")  # a deleted or replaced value's freed page is zeroed, not left behind
    cur.close()


def _create_private(path: Path) -> None:
    """Create the SQLite file 600 if missing; refuse a link or a file others can read."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.close(fd)
        return
    except FileExistsError:
        pass
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
        raise ConfigurationError("console_db", f"{path} is not a plain file (a link is refused)")
    if info.st_mode & 0o077:
        raise ConfigurationError("console_db", f"{path} is readable by others: chmod 600 it")


def _reason(exc: BaseException) -> str:
    """The driver's first line, without the statement or its parameters (they may hold an identifier)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else type(exc).__name__)
    return text.splitlines()[0] if text else type(exc).__name__
