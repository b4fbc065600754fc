"""``lineage forget IDENTIFIER... --case REF``: a person out of every copy the store keeps, with a certificate.

The keyed hash in the certificate is the console audit's (``Audit.subject_digest``, its key in the
console database): one key, so the console and the command find the same certificates. The console
database then keeps that hash in place of each of the person's identifiers (``lineage.console.erasure``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lineage.cli._common import cli_actor, store_for
from lineage.cli.options import add_kafka_options, add_store_options, seconds, settings_from
from lineage.settings import Settings

if TYPE_CHECKING:
    from lineage.console.audit import Audit
    from lineage.store import StoreLocation

__all__ = ["cmd_forget", "kafka_bound", "register", "subject_digest"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this group's sub-commands."""
    forget = sub.add_parser(
        "forget", help="erase a person (every linked identifier) from the store itself, keeping a certificate"
    )
    forget.add_argument("identifier", nargs="+", help="identifiers of the person (their linked ones are found)")
    forget.add_argument("--case", required=True, help="the erasure request's case reference (kept in the certificate)")
    forget.add_argument(
        "--grace",
        type=seconds,
        default=60.0,
        help="keep unreferenced files younger than this that hold none of the person (a writer may be about to "
        "commit them; default 60 s, 0 when nothing else writes)",
    )
    add_store_options(forget, reading=False)
    add_kafka_options(forget)  # given: the certificate states each topic's retention as the broker reports it
    forget.set_defaults(func=cmd_forget)


class _ConsoleAudit:
    """The console's audit trail, opened on first use: a store that forgot nobody is never made to open it."""

    def __init__(self, settings: Settings, location: StoreLocation) -> None:
        self._settings = settings
        self._location = location
        self._audit: Audit | None = None

    @property
    def audit(self) -> Audit:
        """The trail (its key is made in the console database on first use)."""
        if self._audit is None:
            from lineage.console.audit import Audit
            from lineage.console.db import console_db

            self._audit = Audit(console_db(self._settings, self._location))
        return self._audit

    def digest(self, identifier: str) -> str:
        """The keyed hash of an identifier (an embedded database's key read with ``sqlite3`` when it has one)."""
        if self._audit is None and self._settings.console_db is None and self._location.root is not None:
            from lineage.console.keys import embedded_audit_key, keyed_digest

            if (key := embedded_audit_key(Path(self._location.root) / "console.db")) is not None:
                return keyed_digest(key, identifier)
        return self.audit.subject_digest(identifier)


def subject_digest(settings: Settings, location: StoreLocation) -> Callable[[str], str]:
    """The console audit's keyed hash of an identifier; the console database is opened on the first hash."""
    return _ConsoleAudit(settings, location).digest


def kafka_bound(settings: Settings, *, ask_broker: bool) -> str:
    """What the certificate says of the copies on Kafka, which ``forget`` does not reach.

    With ``ask_broker``, each topic's retention as the broker reports it now (asked before anything
    is removed, so a broker that does not answer stops the command with nothing changed).
    """
    from lineage.answers.forget import kafka_copies

    if not ask_broker:
        return kafka_copies(settings.topic, settings.dead_letter_topic)
    from lineage.transport.kafka.admin import topic_retention_ms

    topics = (settings.topic, settings.dead_letter_topic)
    return kafka_copies(*topics, "; ".join(f"{t}: {_retention(topic_retention_ms(settings, t))}" for t in topics))


def _retention(ms: int | None) -> str:
    if ms is None:
        return "no such topic"
    if ms < 0:
        return "kept for ever (retention.ms=-1): set a retention to bound them"
    return f"gone within {ms / 86_400_000:g} day(s) of being written (retention.ms={ms})"


def cmd_forget(args: argparse.Namespace) -> int:
    """Forget the person; the certificate in one line (counts only: no identifier is printed)."""
    from lineage.answers.forget import forget_person
    from lineage.console.erasure import redact_person
    from lineage.ingest.holdings import HoldingsMaintainer
    from lineage.store.certificate import NOTHING_HELD

    settings = settings_from(args)
    store = store_for(args, settings)
    console = _ConsoleAudit(settings, store.location)
    made = forget_person(
        store,
        args.identifier,
        case_ref=args.case,
        digest=console.digest,
        kafka_bound=kafka_bound(settings, ask_broker=bool(args.bootstrap_servers)),
        refresh_holdings=HoldingsMaintainer(store.location).refresh,
        grace_s=args.grace,
    )
    c = made[0]
    if c.status == NOTHING_HELD:
        when = c.erased_at.isoformat(timespec="seconds")
        print(f"nothing held: the store held no row of the {len(made)} identifier(s) of case {c.case_ref} at {when}; "
              f"nothing removed, certificate kept as 'nothing held'; {c.kafka_bound}")  # fmt: skip
    else:
        print(
            f"forgot {len(made)} identifier(s) under case {c.case_ref} at {c.erased_at.isoformat(timespec='seconds')}: "
            f"events rows {c.events_rows}, holdings rows {c.holdings_rows}, data files rewritten {c.files_rewritten}, "
            f"snapshots expired {c.snapshots_expired}, files removed {c.files_removed}"
            + (f", pins removed {c.pins_removed}" if c.pins_removed else "")
            + f"; {c.kafka_bound}"
        )
    r = redact_person(console.audit, [m.digest for m in made], c.case_ref, actor=cli_actor(), role="cli",
                      client="command line")  # fmt: skip
    console.audit.db.close()
    print(f"console database: {r.audit_entries} audit entries and {r.breach_rows} breach rows keep the keyed hash "
          f"instead, {r.case_answers} case answers erased; {r.reclaimed}")  # fmt: skip
    return 0
