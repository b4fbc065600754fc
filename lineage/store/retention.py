"""Store retention: events older than a cut-off leave the events table, and every file that held them goes.

Storage limitation (GDPR Art. 5(1)(e)) applies to the store itself. The steps, each an Iceberg commit
or a file deletion, so a run killed at any point is finished by running it again:

1. the caller brings the holdings up to date first: they are the record of what the retired events
   made (who holds what since when), and stay; no event is read again to make them;
2. rows: a copy-on-write delete of ``occurred_at < cut-off`` (``forget.delete_rows``), consent events
   and erasures on HOLD aside (they stay: the consent a kept use relies on, the legal duty a kept
   holding is under; see ``_before``): pyiceberg plans only the files whose ``occurred_at`` bounds
   reach below the cut-off, drops those wholly older and rewrites those that straddle it. The same
   commit records the cut-off in the table property ``RETAINED_BEFORE``: the holdings maintainer
   then never replays from before it (a rebuild starts from the holdings as of the cut-off instead;
   see ``lineage.ingest.holdings``), and sets a flag that step 4 clears: a re-run after a kill finds
   it and finishes step 4;
3. the holdings name an events snapshot without the retired events as theirs (readers pin it);
4. history: every other snapshot of the events table is expired, its pins removed, and the files
   only they referred to deleted (``forget.drop_history``): an older snapshot still lists them.

The store keeps no dead letters (they stay on the dead-letter topic; the table keeps only their
offsets), so there is nothing of them to retire here.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import (
    And,
    BooleanExpression,
    EqualTo,
    LessThan,
    LessThanOrEqual,
    NotEqualTo,
    NotIn,
    Or,
    Reference,
)
from pyiceberg.table import Table

from lineage.errors import ConfigurationError, StoreConflictError
from lineage.private import private_files
from lineage.settings import MAX_KEEP_EVENTS_DAYS
from lineage.store import plans
from lineage.store.catalog import StoreLocation, store_error
from lineage.store.certificate import append_record
from lineage.store.claim import check_claim
from lineage.store.forget import delete_rows, drop_history
from lineage.store.holdings import SOURCE, event_offsets, read_state, try_load_holdings
from lineage.store.tables import EVENTS, RETAINED_BEFORE, retained_before

__all__ = [
    "RETAINED",
    "RETAINED_BEFORE",
    "RETENTIONS",
    "Retired",
    "cutoff_for",
    "record_retention",
    "retained_before",
    "retire_events",
]

log = logging.getLogger(__name__)

RETAINED = "lineage.retain"  # snapshot summary key marking the commits of a retention run
RETENTIONS = "retentions"  # the store's record of each retention run: when, the cut-off, what went
_PENDING = "lineage.retention.pending"  # events table property: set by the delete, cleared once history is gone
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Retired:
    """What one run of ``retire_events`` removed (a re-run after a kill counts only what was left)."""

    cutoff: datetime
    events_rows: int
    files_rewritten: int  # data files dropped (wholly older) or replaced by a copy without the old rows
    snapshots_expired: int
    files_removed: int  # files deleted from the warehouse: old data files, manifests, metadata
    pins_removed: tuple[str, ...]


def cutoff_for(*, days: int | None, before: datetime | None, now: datetime, option: str = "--before") -> datetime:
    """The cut-off: ``before`` itself, or ``days`` before ``now``; refused when neither, or in the future."""
    if days is not None and not 1 <= days <= MAX_KEEP_EVENTS_DAYS:
        raise ConfigurationError(
            "--older-than", f"must be a whole number of days, 1 to {MAX_KEEP_EVENTS_DAYS}, got {days}"
        )
    if before is None and days is None:
        raise ConfigurationError(
            "--older-than", "give a number of days (or --before TIME, or LINEAGE_KEEP_EVENTS_DAYS)"
        )
    cutoff = before if before is not None else now - timedelta(days=days or 0)
    if cutoff.tzinfo is None:
        raise ConfigurationError(option, "needs a time zone offset (e.g. 2026-01-01T00:00Z)")
    if cutoff > now:
        raise ConfigurationError(
            option, f"{cutoff.isoformat()} is in the future: events not yet occurred cannot be retired"
        )
    return cutoff


def retire_events(
    location: StoreLocation,
    cutoff: datetime,
    *,
    refresh_holdings: Callable[[], object],
    grace_s: float = 60.0,
) -> Retired:
    """Delete every event that occurred before ``cutoff`` and every file of the store that still holds one.

    ``refresh_holdings`` brings the holdings up to date with the events (the maintainer's ``refresh``);
    it is called before the delete, so the holdings reflect the events retired, and after it, so they
    name an events snapshot without them. A later cut-off than one recorded moves it; one not later
    retires nothing (a re-run after a kill only finishes the history): the events before it left
    already, but for late ones stored since, which the holdings applied at the recorded cut-off and
    a rollback to it replays; deleted, they would be lost. A run with a later cut-off retires them.
    """
    check_claim(location)
    at = _micros(cutoff_for(days=None, before=cutoff, now=datetime.now(UTC), option="cutoff"))
    refresh_holdings()
    keep = {RETAINED_BEFORE: str(at), _PENDING: "true"}
    holdings = try_load_holdings(location)
    # only events the holdings reflect may go: one a consumer stores from now on (older than the
    # cut-off, a late one) stays until the holdings have applied it, and a later run retires it
    applied = None if holdings is None else read_state(holdings).applied

    def not_later(events: Table) -> None:  # checked on the version of the table the delete is made from
        recorded = retained_before(events.properties)
        if recorded is not None and at <= recorded:
            raise _NotLater

    with private_files():
        try:
            if applied is not None and not any(applied.values()):
                raise _NotLater  # the holdings reflect no event yet: none may go
            rows, files = delete_rows(
                location, EVENTS, *_before(at, applied), marker=RETAINED, properties=keep, check=not_later
            )  # fmt: skip
        except _NotLater:
            rows = files = 0
        _name_new_events_snapshot(location, refresh_holdings)
        expired = removed = 0
        pins: list[str] = []
        # a run killed after its delete left the flag: the history (older snapshots, their files) is
        # what is left to drop, even if the expiry was done and only unreferenced files remain
        if rows or location.load().properties.get(_PENDING):
            expired, pins, removed, _ = drop_history(location, EVENTS, None, grace_s)
            _done(location)
    plans.drop(location.plans_file())  # the plans of reads from before name the times of what left
    log.info("retention rows=%d files=%d expired=%d removed=%d", rows, files, expired, removed)
    return Retired(
        cutoff=cutoff, events_rows=rows, files_rewritten=files, snapshots_expired=expired, files_removed=removed,
        pins_removed=tuple(pins),
    )  # fmt: skip


def _before(at: int, applied: dict[str, dict[int, int]] | None) -> tuple[BooleanExpression, ...]:
    """Rows that occurred before ``at`` (microseconds), bound as a value, consents and legal holds aside.

    Consents stay (GDPR Art. 7(1): the controller must be able to show the consent a processing
    still relies on). All of them, not the latest per subject and purpose: a use is checked against
    the latest consent before it, and a withdrawal after a kept use would hide the grant it relied on.
    Erasures on HOLD stay too: the legal duty that keeps a holding is what the erasure plan shows for it.
    With ``applied`` (the offsets the holdings reflect), only rows at or below them.

    Two deletes (``delete_rows`` runs one per expression, in one commit): pyiceberg keeps every row
    for which a column its filter names is null, and ``erasure_outcome`` is null but on erasures.
    """
    older: BooleanExpression = LessThan(Reference("occurred_at"), at)  # type: ignore[arg-type, call-arg]
    if applied is not None:
        older = And(older, _reflected(applied))
    kept = NotIn(Reference("event_type"), ("CONSENT", "ERASED"))  # type: ignore[arg-type, call-arg]
    erased = And(
        EqualTo(Reference("event_type"), "ERASED"),  # type: ignore[arg-type, call-arg]
        NotEqualTo(Reference("erasure_outcome"), "HOLD"),  # type: ignore[arg-type, call-arg]
    )
    return And(older, kept), And(older, erased)


def _reflected(applied: dict[str, dict[int, int]]) -> BooleanExpression:
    """Rows at or below the offset ``applied`` of their source partition (never null on a stored event)."""
    parts: list[BooleanExpression] = [
        And(
            And(EqualTo(Reference("origin"), origin), EqualTo(Reference("kafka_partition"), part)),  # type: ignore[arg-type, call-arg]
            LessThanOrEqual(Reference("kafka_offset"), offset),  # type: ignore[arg-type, call-arg]
        )
        for origin, offsets in applied.items()
        for part, offset in offsets.items()
    ]
    return functools.reduce(lambda a, b: Or(a, b), parts)


class _NotLater(Exception):
    """Nothing to delete: the cut-off is not later than the one recorded, or the holdings reflect no event."""


def _micros(at: datetime) -> int:
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _done(location: StoreLocation) -> None:
    """Clear the flag saying a retention run has history left to drop."""
    for _ in range(location.commit_retries):
        try:
            location.load().transaction().remove_properties(_PENDING).commit_transaction()
        except CommitFailedException:
            continue  # a consumer committed meanwhile: try again on its metadata
        except Exception as exc:  # noqa: BLE001
            raise store_error(exc, location, "recording that retention finished") from None
        return
    raise StoreConflictError(f"retention lost to other writers {location.commit_retries} times in a row")


def _name_new_events_snapshot(location: StoreLocation, refresh_holdings: Callable[[], object]) -> None:
    """Make the holdings name an events snapshot made after the delete (else its expiry keeps the old one)."""
    for _ in range(location.commit_retries):
        holdings = try_load_holdings(location)
        if holdings is None:
            return
        events = location.load()
        current = events.current_snapshot()
        state = read_state(holdings)
        if current is None or state.source == current.snapshot_id:
            return
        if state.applied != event_offsets(events):
            refresh_holdings()  # a consumer committed since: the refresh names the newest snapshot
            continue
        try:
            holdings.transaction().set_properties({SOURCE: str(current.snapshot_id)}).commit_transaction()
        except CommitFailedException:
            continue  # the maintainer committed meanwhile: look again
        except Exception as exc:  # noqa: BLE001
            raise store_error(exc, location, "naming the events snapshot the holdings reflect") from None
    raise StoreConflictError(f"retention lost to other writers {location.commit_retries} times in a row")


def record_retention(location: StoreLocation, retired: Retired, *, ran_at: datetime) -> None:
    """Keep one row in ``<namespace>.retentions``: when it ran, the cut-off, and what it removed (no identifier)."""
    row = {
        "ran_at": ran_at, "cutoff": retired.cutoff, "events_rows": retired.events_rows,
        "files_rewritten": retired.files_rewritten, "snapshots_expired": retired.snapshots_expired,
        "files_removed": retired.files_removed, "pins_removed": ",".join(retired.pins_removed),
    }  # fmt: skip
    append_record(location, RETENTIONS, pa.Table.from_pylist([row], schema=_RECORD), "the retention record")


_TS = pa.timestamp("us", tz="UTC")
_RECORD = pa.schema(
    [
        ("ran_at", _TS),
        ("cutoff", _TS),
        ("events_rows", pa.int64()),
        ("files_rewritten", pa.int64()),
        ("snapshots_expired", pa.int64()),
        ("files_removed", pa.int64()),
        ("pins_removed", pa.string()),
    ]
)
