"""A forgotten person out of the console database: identifiers become keyed hashes, answers a note.

``lineage forget`` and ``POST /api/forget`` remove a person from the store; the console database
names them too. After the store's forget, whose certificates hold the keyed hash of every one of
the person's identifiers (linked ones too, and on a re-run after a kill), each place is rewritten:

- the audit trail's ``subject`` and a breach assessment's affected ``subject``: the keyed hash
  (``hashed_subject``) in place of the identifier, so the trail still says that someone was looked
  up and a search by the identifier still finds it, and an assessment keeps its counts;
- a case's attached answer: a note naming the erasure's case (the case row keeps only the hash already).

A breach assessment running meanwhile, its answer read before the forget, writes its people after:
it writes the person by keyed hash itself (``console.service._Forgotten``), so none is left in clear.

The trail's triggers allow exactly that change of ``subject``; an ``audit.redacted`` entry records
it (counts and the case, no identifier). Then the database's files are rewritten (``ConsoleDB.reclaim``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from lineage.console import kept as kept_registers
from lineage.console.audit import Audit
from lineage.console.cases import Cases
from lineage.console.db import HASHED, Tx, hashed_subject

__all__ = ["Redacted", "redact_person"]

#: the tables rewritten (our names: never input)
_RECLAIMED = ("console_audit", "console_breach_affected", "console_cases", "console_registers")


@dataclass(frozen=True, slots=True, kw_only=True)
class Redacted:
    """What the console database kept of the person and no longer does, and how its files were rewritten."""

    audit_entries: int
    breach_rows: int
    case_answers: int
    reclaimed: str


def redact_person(
    audit: Audit, digests: Collection[str], case_ref: str, *, actor: str, role: str, client: str
) -> Redacted:
    """Replace every identifier whose keyed hash is in ``digests``, record it, then rewrite the files.

    Safe to run again: a hashed subject is never matched again, an erased answer is left as it is.
    """
    wanted = set(digests)
    with audit.db.tx() as tx:
        entries = _hash_subjects(tx, "console_audit", audit.subject_digest, wanted)
        rows = _hash_subjects(tx, "console_breach_affected", audit.subject_digest, wanted)
    answers = Cases(audit.db, audit.subject_digest).erase_answers(wanted, case_ref)
    kept_registers.drop(audit.db)  # they may count the person or name their events; the console's or the CLI's forget
    audit.record(actor, role, "audit.redacted", client, case_ref=case_ref,
                 detail=f"identifiers replaced by their keyed hash: {entries} audit entries, {rows} breach "
                        f"rows; {answers} case answers erased")  # fmt: skip
    return Redacted(audit_entries=entries, breach_rows=rows, case_answers=answers,
                    reclaimed=audit.db.reclaim(_RECLAIMED))  # fmt: skip


def _hash_subjects(tx: Tx, table: str, digest: Callable[[str], str], wanted: set[str]) -> int:
    """Replace each subject in clear whose keyed hash is wanted by that hash; how many rows changed.

    Every distinct subject is hashed (the key is not the database's): a re-run after a kill knows
    the person only by hashes, and the identifiers were never kept anywhere else.
    """
    found = tx.rows(f"SELECT DISTINCT subject FROM {table} WHERE subject IS NOT NULL "
                    f"AND substr(subject, 1, {len(HASHED)}) <> :hashed", {"hashed": HASHED})  # fmt: skip
    changed = 0
    for row in found:
        hashed = digest(row["subject"])
        if hashed in wanted:
            changed += tx.run(f"UPDATE {table} SET subject = :to WHERE subject = :s",
                              {"to": hashed_subject(hashed), "s": row["subject"]})  # fmt: skip
    return changed
