"""``lineage forget IDENTIFIER... --case REF``: a person out of every copy the store keeps, with a certificate.

The keyed hash in the certificate is the console audit's (``Audit.subject_digest``, its key in the
console database): one key, so the console and the command find the same certificates.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from lineage.cli._common import add_store_options, seconds, settings_from, store_for
from lineage.settings import Settings

if TYPE_CHECKING:
    from lineage.store import StoreLocation
    from lineage.store.certificate import Certificate

__all__ = ["cmd_forget", "erased_line", "kafka_bound", "register", "subject_digest"]


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
    forget.set_defaults(func=cmd_forget)


def subject_digest(settings: Settings, location: StoreLocation) -> Callable[[str], str]:
    """The console audit's keyed hash of an identifier; the console database is opened on the first hash.

    Its key is made there on first use; a store that forgot nobody is never made to open it.
    """
    from lineage.console.audit import Audit
    from lineage.console.server import console_db

    audit: list[Audit] = []

    def digest(identifier: str) -> str:
        if not audit:
            audit.append(Audit(console_db(settings, location)))
        return audit[0].subject_digest(identifier)

    return digest


def kafka_bound(settings: Settings) -> str:
    """What the certificate says of the copies on Kafka, which ``forget`` does not reach."""
    return (
        f"copies on the Kafka topics {settings.topic} and {settings.dead_letter_topic} (the dead letters) are not "
        "removed by forget: they last until the topics' retention (retention.ms, set on the broker) deletes them"
    )


def erased_line(identifier_shown: str, cert: Certificate) -> str:
    """The one sentence an access request gets for a forgotten person."""
    if cert.status != "done":
        return f"{identifier_shown}: erasure under case {cert.case_ref} begun on {cert.erased_at.date()}, not finished."
    return f"{identifier_shown}: erased on {cert.erased_at.date()} under case {cert.case_ref}."


def cmd_forget(args: argparse.Namespace) -> int:
    """Forget the person; the certificate in one line (counts only: no identifier is printed)."""
    from lineage.answers.forget import forget_person

    settings = settings_from(args)
    store = store_for(args, settings)
    made = forget_person(
        store,
        args.identifier,
        case_ref=args.case,
        digest=subject_digest(settings, store.location),
        kafka_bound=kafka_bound(settings),
        grace_s=args.grace,
    )
    c = made[0]
    print(
        f"forgot {len(made)} identifier(s) under case {c.case_ref} at {c.erased_at.isoformat(timespec='seconds')}: "
        f"events rows {c.events_rows}, holdings rows {c.holdings_rows}, data files rewritten {c.files_rewritten}, "
        f"snapshots expired {c.snapshots_expired}, files removed {c.files_removed}"
        + (f", pins removed {c.pins_removed}" if c.pins_removed else "")
        + f"; {c.kafka_bound}"
    )
    return 0
