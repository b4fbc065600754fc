"""Forgetting a person in our own store (GDPR Art. 17, PIPL Art. 47), and what an access request says after.

The person is every identifier linked to the ones given (as ``access_request`` resolves them). What
is kept afterwards is the certificate: a keyed hash of each identifier, the case, when, and what
was removed; an access request for any of them answers "erased on D under case C" and nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from lineage.answers._common import check_case, check_identifier, linked_identifiers, now
from lineage.errors import InvalidEventError
from lineage.store import Store

if TYPE_CHECKING:  # the certificates' module (and pyiceberg) only once someone was forgotten
    from lineage.store.certificate import Certificate

__all__ = ["case_ref_checked", "erased", "erasure_note", "forget_person", "kafka_copies"]

case_ref_checked = check_case
"""A case reference as certificates and the console's cases keep it (``InvalidEventError`` naming the field if not)."""

Digest = Callable[[str], str]
"""The keyed hash of an identifier (the console audit's HMAC: ``Audit.subject_digest``)."""


def forget_person(
    store: Store,
    identifiers: Sequence[str],
    *,
    case_ref: str,
    digest: Digest,
    kafka_bound: str,
    refresh_holdings: Callable[[], object],
    grace_s: float = 60.0,
    at: datetime | None = None,
) -> list[Certificate]:
    """Remove the person known by ``identifiers`` from every table and file of the store; their certificates.

    ``refresh_holdings`` brings the holdings up to date with the events (the holdings maintainer's
    ``refresh``): the person's linked identifiers are read from them. Safe to run again after a
    kill: it finishes what is left, under the same ``case_ref``.
    """
    from lineage.store.certificate import (
        DONE,
        NOTHING_HELD,
        STARTED,
        certificates,
        record_certificate,
        remove_certificate_orphans,
    )
    from lineage.store.forget import forget_rows

    if not identifiers:
        raise InvalidEventError("identifier", "", "give at least one identifier of the person")
    for identifier in identifiers:
        check_identifier(identifier)
    check_case(case_ref, "case")  # the console's rule: the certificate's case is one line, safe in a file name
    # a link the maintainer has not applied yet would leave that identifier's rows (holding the
    # person's own identifier in linked_subject_ids) in the store, and the certificate would not name it
    refresh_holdings()
    # not ``store``'s snapshot: a reading command pins one from before the refresh
    newest = Store(store.location, threads=store.threads)
    ids: set[str] = set()
    try:
        with newest.session() as q:
            for identifier in identifiers:
                ids.update(linked_identifiers(q, identifier))
    finally:
        newest.close()
        store.close()
    digests = {digest(i) for i in ids}
    # a run killed after the links left the holdings resolved more identifiers than a re-run can:
    # their digests are in its started rows
    begun = {c.digest for c in certificates(store.location, case_ref=case_ref) if c.status == STARTED}
    resumed = bool(begun & digests)
    if resumed:
        digests |= begun
    stamp = at or now()
    if digests - begun:
        record_certificate(
            store.location, sorted(digests - begun), case_ref=case_ref, status=STARTED, erased_at=stamp,
            removed=None, kafka_bound=kafka_bound,
        )  # fmt: skip
    removed = forget_rows(
        store.location, sorted(ids), digest=digest, digests=digests, resumed=resumed, grace_s=grace_s
    )
    # a store that never held the person (and no earlier run of the case began removing them) must
    # not be certified as having erased them: the certificate says nothing was held
    held = removed.events_rows or removed.holdings_rows or resumed
    done = record_certificate(
        store.location, sorted(digests), case_ref=case_ref, status=DONE if held else NOTHING_HELD,
        erased_at=at or now(), removed=removed, kafka_bound=kafka_bound,
    )  # fmt: skip
    remove_certificate_orphans(store.location, grace_s=grace_s)  # a killed run's half-written certificate file
    return done


def erased(store: Store, identifier: str, digest: Digest) -> Certificate | None:
    """The newest certificate of ``identifier`` if the person was forgotten (or their erasure begun)."""
    check_identifier(identifier)
    kept = store.certificates()
    if not kept:
        return None  # the store forgot nobody: the identifier is not even hashed (the key is not opened)
    found = kept.get(digest(identifier))
    return found if found is not None and _forgets(found) else None


def _forgets(cert: Certificate) -> bool:
    """Whether a certificate makes its identifier forgotten: nothing held when asked is answered as usual."""
    from lineage.store.certificate import NOTHING_HELD

    return cert.status != NOTHING_HELD


def erasure_note(cert: Certificate) -> str:
    """What an access request for a forgotten identifier says: the date and the case, nothing more."""
    from lineage.store.certificate import DONE

    if cert.status != DONE:
        return f"erasure under case {cert.case_ref} begun on {cert.erased_at.date()}, not finished."
    return f"erased on {cert.erased_at.date()} under case {cert.case_ref}."


def kafka_copies(topic: str, dead_letter_topic: str, kept: str | None = None) -> str:
    """The certificate's bound on the Kafka copies ``forget`` does not reach; ``kept``: each topic's retention."""
    kept = kept or "until the topics' retention (retention.ms, set on the broker, not by lineage) deletes them"
    return f"copies on the Kafka topics {topic} and {dead_letter_topic} (the dead letters) are not removed: {kept}"
