"""Forgetting a person: their rows out of the events and holdings tables, and every file that held them gone.

Four steps, each an Iceberg commit or a file deletion, so ``forget`` killed at any point is finished
by running it again with the same identifiers (every step finds what is left to do):

1. rows: a copy-on-write delete in each table (``subject_id`` in the events; ``subject``, ``via``
   or ``other`` in the holdings). pyiceberg plans only the files whose column bounds may hold an
   identifier, rewrites those that do without the person's rows (a file of theirs alone is dropped),
   and leaves every other file as it is. The holdings commit also names the new events snapshot as
   theirs, so readers pin an events snapshot without the person, and makes a snapshot (a fence)
   even when the holdings held no row of theirs (events not applied yet), or when resumed: a refresh
   that read those events (it reads the holdings first) fails its commit and starts again without them;
2. history: every snapshot but the current one is expired in both tables, and the pins (tags) on
   them are removed: each older snapshot may still list a file with the person in it;
3. files: those the expired snapshots referred to and the current ones do not are deleted; so is any
   data file nothing refers to that holds an identifier (left by a run killed between 2 and 3), any
   manifest nothing refers to whose column bounds are one (a run killed before its delete committed),
   and any other unreferenced file older than ``grace_s`` (what ``compact`` calls an orphan). An
   unreferenced file holding the person that is younger than ``grace_s`` may be a consumer's, about
   to be committed (deleted, the table would name a missing file): it is spared, and once the grace
   has passed the steps run again, removing the rows it brought if it was committed, or the file if not;
4. the certificate (``certificate.py``) is appended by the caller once this returns.

A linked identifier in ``linked_subject_ids`` always belongs to an event whose ``subject_id`` is
linked to it too, so the person's identifiers as ``linked_identifiers`` resolves them catch those rows.
"""

from __future__ import annotations

import logging
import random
import time
import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import BooleanExpression, In, Reference
from pyiceberg.manifest import ManifestContent, ManifestFile
from pyiceberg.table import Table

from lineage.errors import StoreConflictError
from lineage.private import private_files
from lineage.store import plans
from lineage.store.catalog import StoreLocation, store_error
from lineage.store.claim import check_claim
from lineage.store.holdings import FENCE, HOLDINGS, SOURCE, load_holdings, read_state, try_load_holdings
from lineage.store.maintenance import _referenced, remove_orphans
from lineage.store.snapshots import file_path
from lineage.store.tables import EVENTS

__all__ = ["FORGOTTEN", "Forgotten", "column_in", "delete_rows", "drop_history", "forget_rows"]

log = logging.getLogger(__name__)

FORGOTTEN = "lineage.forget"  # snapshot summary key marking the commits of a forget
_TRUNCATED = 16  # Iceberg keeps a text column's bounds cut to 16 characters (truncate(16), the default)


@dataclass(frozen=True, slots=True, kw_only=True)
class Forgotten:
    """What one run of ``forget_rows`` removed (a re-run after a kill counts only what was left)."""

    events_rows: int
    holdings_rows: int
    files_rewritten: int  # data files replaced by a copy without the person (or dropped: theirs alone)
    snapshots_expired: int
    files_removed: int  # files deleted from the warehouse: old data files, manifests, metadata
    pins_removed: tuple[str, ...]


def forget_rows(
    location: StoreLocation,
    identifiers: Sequence[str],
    *,
    digest: Callable[[str], str],
    digests: Collection[str] = (),
    resumed: bool = False,
    grace_s: float = 60.0,
) -> Forgotten:
    """Remove every row holding one of ``identifiers`` and every file of the store that still holds one.

    ``identifiers`` must be all the person's linked identifiers. An unreferenced data file is also
    removed when a value's ``digest`` is one of ``digests`` (identifiers a killed run had resolved
    and a re-run no longer can). History (older snapshots, pins, files) is dropped only when rows
    were deleted now or the forget is ``resumed`` after a kill: forgetting someone the store never
    held changes nothing. ``grace_s``: unreferenced files younger than this that hold no
    identifier are kept (a writer may be about to commit them).
    """
    check_claim(location)
    ids = sorted(set(identifiers))
    wanted = set(digests) | {digest(i) for i in ids}
    events_rows = holdings_rows = rewritten = expired = removed = 0
    pins: list[str] = []
    with private_files():
        for round_ in range(_ROUNDS):
            found_events, events_files = delete_rows(location, EVENTS, column_in("subject_id", ids))
            found_holdings = holdings_files = 0
            if try_load_holdings(location) is not None:
                found_holdings, holdings_files = delete_rows(
                    location, HOLDINGS, column_in("subject", ids), column_in("via", ids), column_in("other", ids),
                    fence=found_events > 0 or resumed,
                )  # fmt: skip
            events_rows, holdings_rows = events_rows + found_events, holdings_rows + found_holdings
            rewritten += events_files + holdings_files
            spared_until = 0.0
            tables = (EVENTS, HOLDINGS) if try_load_holdings(location) is not None else (EVENTS,)
            for name in tables if events_rows or holdings_rows or resumed else ():
                done, gone_pins, removed_here, young = drop_history(location, name, (ids, digest, wanted), grace_s)
                expired += done
                pins += gone_pins
                removed += removed_here
                spared_until = max(spared_until, young)
            if not spared_until:
                break
            if round_ + 1 == _ROUNDS:
                # never certified done while a file holds the person: the certificate stays "begun"
                raise StoreConflictError(
                    f"forget: consumers kept writing files holding the person through {_ROUNDS} passes: stop "
                    "their sources and run forget again with the same case",
                    path=location.describe(),
                )
            # a consumer's file about to be committed, or one a killed writer left: either way, known
            # once the grace has passed (the promise orphan removal rests on too); never more than the
            # grace, whatever the file system's clock says of the file
            left = min(grace_s, max(0.0, spared_until - time.time()))
            log.warning("forget: a file holding the person is younger than the grace (%.0f s) and may be a "
                        "consumer's, about to be committed: waiting %.0f s, then removing it or the rows it "
                        "brought", grace_s, left)  # fmt: skip
            _wait_out(left)
    plans.drop(location.plans_file())  # the plans of reads from before: no identifier, but the person's times
    return Forgotten(
        events_rows=events_rows,
        holdings_rows=holdings_rows,
        files_rewritten=rewritten,
        snapshots_expired=expired,
        files_removed=removed,
        pins_removed=tuple(pins),
    )


#: passes of the steps at most: the first, and one after each grace a young file holding the person was spared
_ROUNDS = 3


def _wait_out(seconds: float) -> None:
    """Wait for a spared file's grace to pass."""
    if seconds > 0:
        time.sleep(seconds)


def column_in(name: str, values: Sequence[str]) -> BooleanExpression:
    """Rows whose column ``name`` is one of ``values`` (bound as values: no text is parsed)."""
    return In(Reference(name), tuple(values))  # type: ignore[arg-type, call-arg]  # pydantic's signature


def _load(location: StoreLocation, name: str) -> Table:
    return location.load() if name == EVENTS else load_holdings(location)


def delete_rows(
    location: StoreLocation, name: str, *rows: BooleanExpression, marker: str = FORGOTTEN,
    properties: dict[str, str] | None = None, check: Callable[[Table], None] | None = None, fence: bool = False,
) -> tuple[int, int]:  # fmt: skip
    """Delete the rows each of ``rows`` matches from table ``name``, in one commit; (rows deleted, files replaced).

    One delete per column, not one ``Or``: pyiceberg keeps the rows its filter finds null for, and
    an ``Or`` over columns is null wherever one column is (a person row has no ``via``: it stayed).
    The commit's snapshots carry the summary key ``marker``; ``properties`` are set in the same commit
    when it deletes anything. ``check(table)`` runs on each version of the table a delete is made from
    (it may raise to stop): the commit fails if another lands after the version checked. ``fence``:
    a snapshot is made even when no row matches, so a holdings refresh that read the events before
    this forget removed some (a person its holdings do not hold yet) fails its commit and starts
    again from the events without them, rather than writing the person back.
    """
    for attempt in range(location.commit_retries):
        table = _load(location, name)
        if check is not None:
            check(table)
        known = {s.snapshot_id for s in table.metadata.snapshots}
        tx = table.transaction()
        try:
            with warnings.catch_warnings():  # a re-run finds nothing left to delete: that is fine
                warnings.filterwarnings("ignore", "Delete operation did not match any records")
                for matching in rows:
                    tx.delete(matching, snapshot_properties={marker: "rows"})
            # a delete's manifests keep the removed files' entries (with their column bounds: the
            # person's identifier may be one) as DELETED; an empty append after it makes a snapshot
            # whose manifests list only live files, so the delete's manifests leave with its snapshot
            if deleting := bool(tx._updates):  # (nothing to delete on a re-run: no snapshot at all)
                with tx.update_snapshot(snapshot_properties={marker: "manifests"}).fast_append():
                    pass
            elif fence:  # a refresh commits only on the holdings snapshot it read: this one moves them
                with tx.update_snapshot(snapshot_properties={marker: "fence", FENCE: "1"}).fast_append():
                    pass
            if properties and deleting:
                tx.set_properties(properties)
            if name == HOLDINGS:
                # the readers' events snapshot: the one just made without the person (the one the
                # holdings named before is about to be expired with the person's files)
                current = location.load().current_snapshot()
                if current is not None and table.properties.get(SOURCE) != str(current.snapshot_id):
                    tx.set_properties({SOURCE: str(current.snapshot_id)})
            tx.commit_transaction()
        except CommitFailedException:
            _back_off(attempt)
            continue
        except Exception as exc:  # noqa: BLE001 - one line naming the store
            raise store_error(exc, location, f"deleting rows from the {name} table") from None
        fresh = _load(location, name)
        added = [s.summary for s in fresh.metadata.snapshots if s.snapshot_id not in known and s.summary is not None]
        # a rewritten file counts all its rows as deleted and the kept ones as added again
        deleted = sum(int(s.get("deleted-records") or 0) - int(s.get("added-records") or 0) for s in added)
        replaced = sum(int(s.get("deleted-data-files") or 0) for s in added)
        log.info("forget table=%s rows=%d files=%d", name, deleted, replaced)
        return deleted, replaced
    raise StoreConflictError(f"deleting rows lost to other writers {location.commit_retries} times in a row")


def _back_off(attempt: int) -> None:
    time.sleep(min(2.0, 0.02 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1.5))


_Person = tuple[list[str], Callable[[str], str], set[str]]  # identifiers, the keyed hash, the digests wanted


def drop_history(
    location: StoreLocation, name: str, person: _Person | None, grace_s: float
) -> tuple[int, list[str], int, float]:
    """Expire every snapshot of ``name`` but the current one (unpinning them), delete their files.

    ``person``: unreferenced files holding them go too; one younger than ``grace_s`` is spared (a writer
    may be about to commit it). Returns (snapshots expired, pins removed, files deleted, and the time
    the youngest spared file's grace ends, 0.0 if none was).
    """
    pins = _unpin(location, name)
    expired, before = _expire_all_but_current(location, name)
    table = _load(location, name)
    fs = location.filesystem()
    try:
        now = _referenced(table)
        found = fs.get_file_info(pafs.FileSelector(file_path(table.location()), recursive=True, allow_not_found=True))
    except Exception as exc:  # noqa: BLE001
        raise store_error(exc, location, "listing the table's files") from None
    removed = 0
    spared = 0.0
    cutoff = time.time() - grace_s
    for info in found:
        if info.type != pafs.FileType.File or info.path in now:
            continue
        holds = info.path not in before and person is not None and _orphan_holds(table, location, fs, info.path, person)
        # grace 0: the caller says no writer runs, so no file is young, whatever the file system's
        # clock says of it (one ahead of ours made every pass spare it)
        if holds and grace_s > 0 and (mtime := _mtime(info)) > cutoff:
            spared = max(spared, mtime + grace_s)
            continue
        if info.path in before or holds:
            try:
                fs.delete_file(info.path)
                removed += 1
            except FileNotFoundError:
                pass  # another run took it
            except Exception as exc:  # noqa: BLE001
                raise store_error(exc, location, "deleting a file that held a forgotten person") from None
    removed += remove_orphans(location, grace_s=grace_s, table_name=name)
    return expired, pins, removed, spared


def _mtime(info: pafs.FileInfo) -> float:
    """When a file was last written (now when the filesystem does not say: counted young)."""
    return info.mtime.timestamp() if info.mtime is not None else time.time()


def _unpin(location: StoreLocation, name: str) -> list[str]:
    """Remove the tags on snapshots other than the current one; their names."""
    for attempt in range(location.commit_retries):
        table = _load(location, name)
        current = table.metadata.current_snapshot_id
        tags = sorted(n for n, ref in table.metadata.refs.items() if n != "main" and ref.snapshot_id != current)
        if not tags:
            return []
        manage = table.manage_snapshots()
        for tag in tags:
            manage = manage.remove_tag(tag)
        try:
            manage.commit()
        except CommitFailedException:
            _back_off(attempt)
            continue
        except Exception as exc:  # noqa: BLE001
            raise store_error(exc, location, "removing pins of snapshots that held a forgotten person") from None
        return tags
    raise StoreConflictError(f"forgetting lost to other writers {location.commit_retries} times in a row")


def _expire_all_but_current(location: StoreLocation, name: str) -> tuple[int, set[str]]:
    """Expire every snapshot of ``name`` but the current one; (how many, files referenced before)."""
    for attempt in range(location.commit_retries):
        table = _load(location, name)
        try:
            before = _referenced(table)
        except Exception as exc:  # noqa: BLE001
            raise store_error(exc, location, "listing the table's files") from None
        current = table.metadata.current_snapshot_id
        protected = {ref.snapshot_id for ref in table.metadata.refs.values()} | _holdings_source(location, name)
        doomed = [s.snapshot_id for s in table.metadata.snapshots if s.snapshot_id != current]
        doomed = [sid for sid in doomed if sid not in protected]
        if not doomed:
            return 0, before
        try:
            table.maintenance.expire_snapshots().by_ids(doomed).commit()
        except CommitFailedException:
            _back_off(attempt)
            continue
        except Exception as exc:  # noqa: BLE001
            raise store_error(exc, location, "expiring snapshots that held a forgotten person") from None
        return len(doomed), before
    raise StoreConflictError(f"forgetting lost to other writers {location.commit_retries} times in a row")


def _holdings_source(location: StoreLocation, name: str) -> set[int]:
    """The events snapshot the holdings name as theirs (readers pin it), kept; made by step 1 without the person."""
    holdings = try_load_holdings(location) if name == EVENTS else None
    source = None if holdings is None else read_state(holdings).source
    return set() if source is None else {source}


def _orphan_holds(table: Table, location: StoreLocation, fs: pafs.FileSystem, path: str, person: _Person) -> bool:
    """Whether an unreferenced file holds the person: a data file's values, or a manifest's column bounds."""
    if path.endswith(".parquet"):
        return _holds(fs, path, person)
    if path.endswith(".avro") and not path.rpartition("/")[2].startswith("snap-"):  # manifest lists hold no bounds
        return _manifest_holds(table, f"s3://{path}" if location.on_s3 else path, person[0])
    return False


def _manifest_holds(table: Table, uri: str, ids: list[str]) -> bool:
    """Whether a manifest lists a file with a bound that is one of ``ids`` (or, cut to 16 characters, starts one).

    A forget killed between writing its delete's manifests and committing leaves them unreferenced,
    naming the person's files with their bounds; a re-run within the grace must not keep them.
    """
    wanted = [i.encode() for i in ids]
    manifest = ManifestFile.from_args(
        manifest_path=uri, manifest_length=0, partition_spec_id=table.spec().spec_id, content=ManifestContent.DATA,
        sequence_number=0, min_sequence_number=0, added_snapshot_id=0,
    )  # fmt: skip
    try:
        entries = manifest.fetch_manifest_entry(table.io, discard_deleted=False)
    except Exception:  # noqa: BLE001 - half-written (a writer's manifest in progress): not one of ours
        return False
    for entry in entries:
        bounds = [*(entry.data_file.lower_bounds or {}).values(), *(entry.data_file.upper_bounds or {}).values()]
        if any(b == w or (len(b) >= _TRUNCATED and w.startswith(b)) for b in bounds for w in wanted):
            return True
    return False


def _holds(fs: pafs.FileSystem, path: str, person: _Person) -> bool:
    """Whether the data file at ``path`` has one of the person's identifiers in a text column, or their digest."""
    ids, digest, digests = person
    try:
        data = pq.read_table(path, filesystem=fs)
    except Exception:  # noqa: BLE001 - half-written: a writer's file in progress, or ours (without the person)
        return False
    wanted = pa.array(ids, pa.string())
    for column in data.columns:
        values = column
        while pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
            values = pc.list_flatten(values)
        if not pa.types.is_string(values.type):
            continue
        if pc.any(pc.is_in(values, value_set=wanted)).as_py():
            return True
        if any(digest(v) in digests for v in pc.unique(values).drop_null().to_pylist()):
            return True
    return False
