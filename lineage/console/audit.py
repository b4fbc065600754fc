"""The audit trail: who did what, when, why (the case reference) and from where. Append-only.

Each entry is inserted into ``console_audit`` (triggers refuse UPDATE and DELETE; the app has no
path that changes a row) before the answer it records is shown, and produced to a Kafka topic
(``lineage.audit``) for the organisation's own log store. The table keeps the identifier searched,
since auditors must see who looked at whom; the Kafka copy carries only its keyed hash (HMAC with a
key kept in the console database), so the topic and whatever reads it never hold it in clear. Once a
person is forgotten, their identifiers in the table are replaced by that keyed hash too (the one
change the triggers allow, recorded as ``audit.redacted``): a search by the identifier still finds them.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from lineage.console.db import ConsoleDB, hashed_subject
from lineage.console.keys import keyed_digest
from lineage.console.limits import CASE_REFERENCE_CHARS, IDENTIFIER_CHARS, NAME_CHARS, check_length

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
    "store.forget",
    "audit.redacted",
)
_SEARCH_LIMIT = 500
_PARTS = ("actor", "action", "case_ref")  # searched by a part of the text
_FIELDS = {"case_ref": "case_reference"}  # a part's name as the forms and the API call it
_PART_CHARS = {"case_ref": CASE_REFERENCE_CHARS}  # the others are account names or actions: NAME_CHARS


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
        return keyed_digest(self._key, identifier)

    def redacted(self, identifier: str) -> str:
        """What the table keeps instead of ``identifier`` once its person is forgotten: the keyed hash, marked."""
        return hashed_subject(self.subject_digest(identifier))

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
        self, *, before: int | None = None, limit: int = _SEARCH_LIMIT, **filters: str | datetime | None
    ) -> list[dict[str, Any]]:
        """Entries matching every given filter, newest first, at most ``limit``; ``before`` a seq: the older ones.

        Filters: ``actor``, ``action`` and ``case_ref`` match a part, in any case; ``subject`` (the
        identifier looked up) matches whole, since a part would list other people, and takes in the
        downloads of the answers of that person's cases; ``since`` and
        ``until`` (datetimes) bound the time, both included. Paging is by keyset (``before`` the last
        seq shown), so the entries a search itself appends never shift a page.
        """
        where, params = _where(filters, self.subject_digest)
        if before is not None:
            where.append("seq < :before")
            params["before"] = before
        params["limit"] = max(1, min(limit, _SEARCH_LIMIT))
        sql = "SELECT * FROM console_audit" + (" WHERE " + " AND ".join(where) if where else "")
        with self.db.tx() as tx:
            return tx.rows(sql + " ORDER BY seq DESC LIMIT :limit", params)

    def count(self, **filters: str | datetime | None) -> int:
        """How many entries match the filters (``search``'s, without paging)."""
        where, params = _where(filters, self.subject_digest)
        sql = "SELECT count(*) AS n FROM console_audit" + (" WHERE " + " AND ".join(where) if where else "")
        with self.db.tx() as tx:
            found = tx.one(sql, params)
        return int(found["n"]) if found else 0

    def close(self) -> None:
        """Flush the Kafka copy."""
        if self.sink is not None:
            self.sink.close(10)


def _where(
    filters: Mapping[str, str | datetime | None], digest: Callable[[str], str]
) -> tuple[list[str], dict[str, Any]]:
    """The WHERE terms and parameters of a search; column names are ours, values are parameters."""
    unknown = set(filters) - {*_PARTS, "subject", "since", "until"}
    if unknown:
        raise TypeError(f"unknown audit filter {sorted(unknown)[0]!r}")
    where: list[str] = []
    params: dict[str, Any] = {}
    for column in _PARTS:
        value = filters.get(column)
        if isinstance(value, str) and value:  # a part: its own wildcards escaped
            # no longer than what it may match: a 1 MB pattern is work for the database and the search's entry keeps it
            check_length(_FIELDS.get(column, column), value, _PART_CHARS.get(column, NAME_CHARS))
            where.append(f"lower({column}) LIKE :{column} ESCAPE '!'")
            params[column] = "%" + re.sub(r"([!%_])", r"!\1", value.lower()) + "%"
    subject = filters.get("subject")
    check_length("subject", subject if isinstance(subject, str) else None, IDENTIFIER_CHARS, personal=True)
    if isinstance(subject, str) and subject:
        # a download of a case's answer names the case only (the case keeps the identifier as this
        # keyed hash): it is found through the person's cases, or "who saw whom" would miss it
        # a forgotten person's entries keep the keyed hash instead: found by the identifier all the same
        where.append("(subject IN (:subject, :hashed) OR (subject IS NULL AND action = 'person.download' AND "
                     "case_ref IN (SELECT case_ref FROM console_cases WHERE subject_digest = :digest)))")  # fmt: skip
        params["subject"] = subject
        params["digest"] = digest(subject)
        params["hashed"] = hashed_subject(params["digest"])
    # entries keep their time as ISO text in UTC to the microsecond, so text order is time order
    for name, op in (("since", ">="), ("until", "<=")):
        bound = filters.get(name)
        if isinstance(bound, datetime):
            where.append(f"at {op} :{name}")
            params[name] = bound.astimezone(UTC).isoformat(timespec="microseconds")
    return where, params
