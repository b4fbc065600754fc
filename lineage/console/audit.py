"""The audit trail: who did what, when, why (the case reference) and from where. Append-only.

Each entry is inserted into ``console_audit`` (triggers refuse UPDATE and DELETE; the app has no
path that changes a row) before the answer it records is shown, and produced to a Kafka topic
(``lineage.audit``) for the organisation's own log store. The table keeps the identifier searched,
since auditors must see who looked at whom; the Kafka copy carries only its keyed hash (HMAC with a
key kept in the console database), so the topic and whatever reads it never hold it in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
from datetime import UTC, datetime
from typing import Any, Protocol

from lineage.console.db import ConsoleDB
from lineage.console.limits import CASE_REFERENCE_CHARS, IDENTIFIER_CHARS, check_length

__all__ = ["ACTIONS", "Audit", "AuditSink"]

_log = logging.getLogger("lineage.console.audit")

ACTIONS = (
    "signin.ok",
    "signin.failed",
    "signout",
    "password.change",
    "password.reset",
    "person.view",
    "person.download",
    "breach.run",
    "breach.download",
    "audit.view",
    "audit.search",
    "access.refused",
    "csrf.refused",
    "user.add",
    "user.disable",
    "user.enable",
    "user.token",
    "user.revoke",
)
_SEARCH_LIMIT = 500


class AuditSink(Protocol):
    """Where a copy of each entry goes (the Kafka producer of ``lineage.transport``)."""

    def send(self, topic: str, key: bytes, value: bytes, event_id: str) -> Any:
        """Send one message."""
        ...

    def close(self, timeout_s: float | None = None) -> None:
        """Flush and close."""
        ...


class Audit:
    """Append entries; search them."""

    def __init__(self, db: ConsoleDB, sink: AuditSink | None = None, topic: str = "lineage.audit") -> None:
        """Write to ``db``, and to ``topic`` through ``sink`` when one is given."""
        self.db = db
        self.sink = sink
        self.topic = topic
        self._lock = threading.Lock()  # kafka-python's producer is thread-safe; the lock keeps send order
        with db.tx() as tx:
            row = tx.one("SELECT value FROM console_meta WHERE key = 'audit_key'")
            if row is None:
                tx.run("INSERT INTO console_meta (key, value) VALUES ('audit_key', :v)", {"v": secrets.token_hex(32)})
                row = tx.one("SELECT value FROM console_meta WHERE key = 'audit_key'")
        assert row is not None
        self._key = bytes.fromhex(row["value"])

    def subject_digest(self, identifier: str) -> str:
        """The keyed hash the Kafka copy carries instead of an identifier."""
        return hmac.new(self._key, identifier.encode(), hashlib.sha256).hexdigest()

    def record(
        self,
        actor: str,
        role: str,
        action: str,
        client: str,
        *,
        detail: str = "",
        subject: str | None = None,
        case_ref: str | None = None,
        outcome: str = "ok",
    ) -> int:
        """Append one entry (raising if the database refuses it: no unrecorded look-up); its sequence number.

        An identifier or case reference past its limit is refused, not cut: the entry must say
        exactly whom and why, and the table keeps everything for good.
        """
        assert action in ACTIONS, action
        check_length("subject", subject, IDENTIFIER_CHARS, personal=True)
        check_length("case_reference", case_ref, CASE_REFERENCE_CHARS)
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="microseconds"),
            "actor": actor[:64],
            "role": role,
            "action": action,
            "detail": detail[:2000],
            "subject": subject,
            "case_ref": case_ref,
            "client": client[:100],
            "outcome": outcome[:200],
        }
        with self.db.tx() as tx:
            seq = int(
                tx.rows(
                    "INSERT INTO console_audit (at, actor, role, action, detail, subject, case_ref, client, outcome) "
                    "VALUES (:at, :actor, :role, :action, :detail, :subject, :case_ref, :client, :outcome) "
                    "RETURNING seq",
                    entry,
                )[0]["seq"]
            )
        if self.sink is not None:
            shipped = {**entry, "seq": seq, "subject": None if subject is None else self.subject_digest(subject)}
            try:
                with self._lock:
                    self.sink.send(self.topic, actor.encode(), json.dumps(shipped).encode(), f"audit-{seq}")
            except Exception as exc:  # the table holds the entry; the copy's failure is logged, never its content
                _log.warning("audit entry %d not produced to %s: %s", seq, self.topic, type(exc).__name__)
        return seq

    def search(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        case_ref: str | None = None,
        subject: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> list[dict[str, Any]]:
        """Entries matching every given filter, newest first (at most 500)."""
        where, params = [], {}
        for column, value in (("actor", actor), ("action", action), ("case_ref", case_ref), ("subject", subject)):
            if value:
                where.append(f"{column} = :{column}")  # column names are ours; values are parameters
                params[column] = value
        if since:
            where.append("at >= :since")
            params["since"] = since
        if until:
            where.append("at <= :until")
            params["until"] = until
        sql = "SELECT * FROM console_audit" + (" WHERE " + " AND ".join(where) if where else "")
        with self.db.tx() as tx:
            return tx.rows(sql + f" ORDER BY seq DESC LIMIT {_SEARCH_LIMIT}", params)

    def close(self) -> None:
        """Flush the Kafka copy."""
        if self.sink is not None:
            self.sink.close(10)
