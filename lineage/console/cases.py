"""Access and erasure requests kept as cases: received, due by the person's regimes, assigned, answered, closed.

A case row never holds the person's identifier in clear: it keeps the audit's keyed hash of it
(the same HMAC key, so an auditor can match a case to the look-ups in the audit trail). The answer
attached is the access report and erasure plan as sent, kept as JSON in the (private, mode 600 or
PostgreSQL) console database: it is the person's own data by nature, it must be downloadable again
exactly as it was answered, and a key kept beside it would hide nothing. Only analysts open it, and
each download is recorded in the audit trail. When the person is forgotten, the answer is replaced by
a note naming the erasure's case (a hash of a whole report would say nothing); the case stays.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from lineage.console.db import ConsoleDB, Tx
from lineage.contract.law import REQUEST_DUE_RULE, request_due
from lineage.errors import InvalidEventError
from lineage.present.formats import Document, render

__all__ = ["CASE_KINDS", "CASE_STATUSES", "LISTED", "Case", "Cases", "parse_day"]

CASE_KINDS = ("access", "erasure")
CASE_STATUSES = ("open", "answered", "closed")
#: the most cases a list shows (the page says how many more match)
LISTED = 1000
_COLUMNS = (
    "case_ref, kind, received, regimes, due, status, status_by, status_at, assignee, opened_by, opened_at, "
    "answered_at, length(answer) AS answer_chars"
)


@dataclass(frozen=True)
class Case:
    """One request, as the case list shows it (never the answer itself)."""

    case_ref: str
    kind: str
    received: date
    regimes: list[str]
    due: date
    status: str
    status_by: str
    status_at: str
    assignee: str | None
    opened_by: str
    opened_at: str
    answered_at: str
    answer_chars: int

    def overdue(self, today: date) -> bool:
        """Still open after its due date."""
        return self.status == "open" and self.due < today

    def as_json(self, today: date) -> dict[str, Any]:
        """The case as the JSON twin gives it, with the rule its due date applied."""
        return {"case_reference": self.case_ref, "kind": self.kind, "received": self.received.isoformat(),
                "regimes": self.regimes, "due": self.due.isoformat(), "overdue": self.overdue(today),
                "status": self.status, "status_by": self.status_by, "status_at": self.status_at,
                "assignee": self.assignee, "opened_by": self.opened_by, "opened_at": self.opened_at,
                "answered_at": self.answered_at, "answer_chars": self.answer_chars,
                "due_rule": REQUEST_DUE_RULE}  # fmt: skip


def parse_day(name: str, text: str | None) -> date:
    """A calendar day (YYYY-MM-DD, as a date input sends it); today (UTC) when empty; never in the future."""
    today = datetime.now(UTC).date()
    if not text:
        return today
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidEventError(name, text[:40], "is not a date (YYYY-MM-DD)") from None
    if day > today or day.year < 1900:
        raise InvalidEventError(name, text[:40], "must be a day between 1900 and today")
    return day


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``; else one line listing them."""
    if value not in choices:
        raise InvalidEventError(name, value[:40], f"must be one of {', '.join(choices)}")
    return value


class Cases:
    """The ``console_cases`` table."""

    def __init__(self, db: ConsoleDB, digest: Callable[[str], str]) -> None:
        """Keep cases in ``db``; ``digest`` is the audit's keyed hash of an identifier."""
        self.db = db
        self._digest = digest

    def attach(
        self,
        *,
        case_ref: str,
        kind: str,
        received: date,
        identifier: str,
        regimes: Iterable[str],
        answer: Document,
        by: str,
        assignee: str | None,
    ) -> Case:
        """Open a case with its answer, or attach a newer answer to the same person's open case."""
        check_choice("kind", kind, CASE_KINDS)
        due, applied = request_due(received, regimes)
        digest = self._digest(identifier)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        body = render(answer, "json")
        with self.db.tx() as tx:
            found = self._about_another(tx, case_ref, digest)
            if found is None:
                tx.run(
                    "INSERT INTO console_cases (case_ref, kind, subject_digest, received, regimes, due, status, "
                    "status_by, status_at, assignee, opened_by, opened_at, answer, answered_at) VALUES (:c, :kind, "
                    ":digest, :received, :regimes, :due, 'open', :by, :now, :assignee, :by, :now, :answer, :now)",
                    {"c": case_ref, "kind": kind, "digest": digest, "received": received.isoformat(),
                     "regimes": ",".join(applied), "due": due.isoformat(), "by": by, "now": now,
                     "assignee": assignee, "answer": body},
                )  # fmt: skip
            else:
                tx.run("UPDATE console_cases SET answer = :answer, answered_at = :now WHERE case_ref = :c",
                       {"answer": body, "now": now, "c": case_ref})  # fmt: skip
        case = self.get(case_ref)
        assert case is not None
        return case

    def check_person(self, case_ref: str, identifier: str) -> None:
        """Refuse a reference already used for a case about someone else (before anyone is looked up)."""
        with self.db.tx() as tx:
            self._about_another(tx, case_ref, self._digest(identifier))

    @staticmethod
    def _about_another(tx: Tx, case_ref: str, digest: str) -> dict[str, Any] | None:
        """The case's row (None if new); ``InvalidEventError`` if it is about another person."""
        found = tx.one("SELECT subject_digest FROM console_cases WHERE case_ref = :c", {"c": case_ref})
        if found is not None and found["subject_digest"] != digest:
            raise InvalidEventError("case_reference", case_ref, "is already a case about another person")
        return found

    def get(self, case_ref: str) -> Case | None:
        """One case, or None."""
        with self.db.tx() as tx:
            row = tx.one(f"SELECT {_COLUMNS} FROM console_cases WHERE case_ref = :c", {"c": case_ref})
        return None if row is None else _case(row)

    def listing(self, status: str | None = None, assignee: str | None = None) -> list[Case]:
        """Cases matching the filters, at most ``LISTED``: those to answer first, then closed; the earliest due first.

        Closed cases go last: ordered by due date alone, the first thousand ever opened filled the
        list for good and every newer case fell off its end, unseen.
        """
        where, params = _filters(status, assignee)
        order = f" ORDER BY CASE WHEN status = 'closed' THEN 1 ELSE 0 END, due, case_ref LIMIT {LISTED}"
        with self.db.tx() as tx:
            return [_case(r) for r in tx.rows(f"SELECT {_COLUMNS} FROM console_cases{where}{order}", params)]

    def count(self, status: str | None = None, assignee: str | None = None) -> int:
        """How many cases match the filters (``listing`` shows at most ``LISTED`` of them)."""
        where, params = _filters(status, assignee)
        with self.db.tx() as tx:
            found = tx.one(f"SELECT count(*) AS n FROM console_cases{where}", params)
        return int(found["n"]) if found else 0

    def answer(self, case_ref: str) -> str | None:
        """The answer attached, as the JSON document it was."""
        with self.db.tx() as tx:
            row = tx.one("SELECT answer FROM console_cases WHERE case_ref = :c", {"c": case_ref})
        return None if row is None else str(row["answer"])

    def erase_answers(self, digests: Collection[str], case_ref: str) -> int:
        """Replace the answers of the cases about these keyed hashes by a note naming ``case_ref``; how many."""
        note = json.dumps({"note": f"erased under case {case_ref}"})
        with self.db.tx() as tx:
            return sum(tx.run("UPDATE console_cases SET answer = :note WHERE subject_digest = :d AND answer <> :note",
                              {"note": note, "d": d}) for d in sorted(digests))  # fmt: skip

    def update(self, case_ref: str, by: str, *, status: str | None = None, assignee: str | None = None) -> Case:
        """Set the status (recording who and when) and the assignee; the case as it is now."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self.db.tx() as tx:
            if tx.one("SELECT case_ref FROM console_cases WHERE case_ref = :c", {"c": case_ref}) is None:
                raise InvalidEventError("case_reference", case_ref, "is not a case")
            if status:
                check_choice("status", status, CASE_STATUSES)
                tx.run("UPDATE console_cases SET status = :s, status_by = :by, status_at = :now WHERE case_ref = :c",
                       {"s": status, "by": by, "now": now, "c": case_ref})  # fmt: skip
            if assignee is not None:
                tx.run("UPDATE console_cases SET assignee = :a WHERE case_ref = :c",
                       {"a": assignee or None, "c": case_ref})  # fmt: skip
        case = self.get(case_ref)
        assert case is not None
        return case


def _filters(status: str | None, assignee: str | None) -> tuple[str, dict[str, str]]:
    """The WHERE clause of the case filters (our column names, the values as parameters)."""
    where, params = [], {}
    if status:
        where.append("status = :status")
        params["status"] = check_choice("status", status, CASE_STATUSES)
    if assignee:
        where.append("assignee = :assignee")
        params["assignee"] = assignee
    return (" WHERE " + " AND ".join(where) if where else ""), params


def _case(row: dict[str, Any]) -> Case:
    return Case(**{**row, "received": date.fromisoformat(row["received"]), "due": date.fromisoformat(row["due"]),
                   "regimes": row["regimes"].split(",") if row["regimes"] else [],
                   "answer_chars": int(row["answer_chars"] or 0)})  # fmt: skip
