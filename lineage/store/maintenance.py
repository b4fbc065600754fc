"""Keeping the table fast and small: compaction, snapshot expiry, removal of files nothing refers to.

Every step is one Iceberg commit (or none), so a reader never sees a half-done step and a step
killed at any point leaves the table as it was before or after it; what a killed step had written
but not committed is an orphan file, removed by a later run once older than the grace period.

- ``compact`` reads groups of small files of the current snapshot, sorts their rows by subject and
  offset, writes files with small row groups, and commits an overwrite that removes exactly the
  inputs. It never drops a row: two events sharing an id may be about two people (a producer's bug
  must not hide one of them), and every stored offset keeps its row; answers count an event once.
  Table properties (the stored offsets) are not touched. Losing a race to a consumer's append
  re-stages the same new files on the fresh table, if every input is still live; if another
  compaction took an input first, ours is abandoned.
- ``expire`` drops snapshots that stopped being current longer ago than the retention (tagged ones
  stay: ``snapshots.pin``).
- ``remove_orphans`` deletes files under the table that no remaining snapshot, manifest or metadata
  file refers to and that are older than the grace period. The grace must exceed the longest time a
  writer holds a written file before committing it (a consumer's flush; a compaction's group).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.io.pyarrow import _dataframe_to_data_files
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table

from lineage.errors import StoreConflictError
from lineage.private import private_files
from lineage.store.catalog import StoreLocation, read_error, store_error
from lineage.store.claim import check_claim
from lineage.store.holdings import HOLDINGS, load_holdings, read_state, try_load_holdings
from lineage.store.snapshots import file_path
from lineage.store.tables import COLUMNS, EVENTS

__all__ = ["CompactionReport", "compact", "expire", "remove_orphans"]

log = logging.getLogger(__name__)

COMPACTED = "lineage.compaction"  # snapshot summary key marking our compaction commits


@dataclass(frozen=True, slots=True)
class CompactionReport:
    """What a maintenance run did."""

    files_in: int
    files_out: int
    groups: int
    expired: int
    removed: int


def compact(
    location: StoreLocation,
    *,
    target_mb: float = 64.0,
    min_files: int = 2,
    expire_after_s: float = 86400.0,
    grace_s: float = 3600.0,
) -> CompactionReport:
    """Rewrite small files sorted by subject, then expire old snapshots and remove orphan files."""
    check_claim(location)
    with private_files():
        return _compact(location, target_mb, min_files, expire_after_s, grace_s)


def _compact(
    location: StoreLocation, target_mb: float, min_files: int, expire_after_s: float, grace_s: float
) -> CompactionReport:
    table = _load(location)
    files_in = files_out = groups = 0
    for group in _groups(table, int(target_mb * 1024 * 1024), min_files):
        outcome = _rewrite(location, group)
        if outcome:
            groups += 1
            files_in += len(group)
            files_out += outcome
    expired = expire(location, older_than_s=expire_after_s)
    removed = remove_orphans(location, grace_s=grace_s)
    if try_load_holdings(location) is not None:  # each holdings snapshot replaces files: keep few
        expired += expire(location, older_than_s=expire_after_s, table=HOLDINGS)
        removed += remove_orphans(location, grace_s=grace_s, table_name=HOLDINGS)
    return CompactionReport(files_in, files_out, groups, expired, removed)


def _load(location: StoreLocation, table: str = EVENTS) -> Table:
    with private_files():
        return location.load() if table == EVENTS else load_holdings(location)


def _groups(table: Table, target_bytes: int, min_files: int) -> list[list[DataFile]]:
    """The current snapshot's small files, in groups of up to ``target_bytes`` on disk."""
    if table.current_snapshot() is None:
        return []
    small = [t.file for t in table.scan().plan_files() if t.file.file_size_in_bytes < target_bytes // 2]
    groups: list[list[DataFile]] = []
    size = 0
    for f in sorted(small, key=lambda f: f.file_path):
        if not groups or size + f.file_size_in_bytes > target_bytes:
            groups.append([])
            size = 0
        groups[-1].append(f)
        size += f.file_size_in_bytes
    return [g for g in groups if len(g) >= min_files]


def _rewrite(location: StoreLocation, inputs: list[DataFile]) -> int:
    """Replace ``inputs`` by sorted files in one commit; return how many were written (0: abandoned)."""
    table = _load(location)
    fs = location.filesystem()
    started = time.perf_counter()
    try:
        # the table's own columns: an older table without the provenance ones keeps its layout
        have = {f.name for f in table.schema().fields}
        columns = pa.schema([c for c in COLUMNS if c.name in have])
        data = pads.dataset([file_path(f.file_path) for f in inputs], schema=columns, format="parquet", filesystem=fs)
        rows = data.to_table()
    except Exception as exc:  # noqa: BLE001 - a file that cannot be read is named, not a pyarrow traceback
        raise read_error(exc, location, "compacting") from None
    try:
        rows = rows.sort_by([("subject_id", "ascending"), ("kafka_offset", "ascending")])
        with private_files():
            outputs = list(_dataframe_to_data_files(table.metadata, rows, table.io, write_uuid=uuid.uuid4()))
    except Exception as exc:  # noqa: BLE001
        raise store_error(exc, location, "compacting") from None
    wanted = {f.file_path for f in inputs}
    for attempt in range(location.commit_retries):
        if attempt:
            table = _load(location)
        live = {t.file.file_path for t in table.scan().plan_files()} if table.current_snapshot() else set()
        if not wanted <= live:
            log.info("compaction abandoned: another compaction replaced its inputs first")
            _delete(fs, outputs)
            return 0
        tx = table.transaction()
        with tx.update_snapshot(snapshot_properties={COMPACTED: "sort subject_id, kafka_offset"}).overwrite() as ow:
            for f in inputs:
                ow.delete_data_file(f)
            for f in outputs:
                ow.append_data_file(f)
        try:
            with private_files():
                tx.commit_transaction()
        except CommitFailedException:
            time.sleep(min(2.0, 0.02 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1.5))
            continue
        except Exception as exc:  # noqa: BLE001
            raise store_error(exc, location, "committing a compaction") from None
        log.info(
            "compacted files=%d rows=%d into=%d seconds=%.2f",
            len(inputs),
            rows.num_rows,
            len(outputs),
            time.perf_counter() - started,
        )
        return len(outputs)
    raise StoreConflictError(f"compaction lost to other writers {location.commit_retries} times in a row")


def _delete(fs: pafs.FileSystem, files: list[DataFile]) -> None:
    for f in files:
        try:
            fs.delete_file(file_path(f.file_path))
        except OSError:
            pass  # left as an orphan: remove_orphans takes it later


def expire(location: StoreLocation, *, older_than_s: float, table: str = EVENTS) -> int:
    """Expire snapshots of ``table`` replaced longer than ``older_than_s`` ago.

    Never the current one, never a tagged one, and never the events snapshot the holdings were
    made from: readers pin it (the holdings and the events an answer joins must agree).
    """
    check_claim(location)
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
    with private_files():
        return _expire(location, cutoff, table)


def _expire(location: StoreLocation, cutoff: datetime, name: str) -> int:
    for attempt in range(location.commit_retries):
        table = _load(location, name)
        keep: set[int] = set()
        if name == EVENTS and (holdings := try_load_holdings(location)) is not None:
            source = read_state(holdings).source
            keep = set() if source is None else {source}
        doomed = [sid for sid in _expirable(table, cutoff) if sid not in keep]
        if not doomed:
            return 0
        try:
            with private_files():
                table.maintenance.expire_snapshots().by_ids(doomed).commit()
        except CommitFailedException:
            time.sleep(min(2.0, 0.02 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1.5))
            continue
        except Exception as exc:  # noqa: BLE001
            raise store_error(exc, location, "expiring snapshots") from None
        return len(doomed)
    raise StoreConflictError(f"snapshot expiry lost to other writers {location.commit_retries} times in a row")


def _expirable(table: Table, cutoff: datetime) -> list[int]:
    """Snapshots that stopped being current before ``cutoff`` (their successor is that old), untagged.

    A snapshot's own age is not enough: after a quiet weekend the current snapshot is days old, and
    expiring it the moment a compaction replaces it would pull it from under the readers using it.
    """
    cutoff_ms = int(cutoff.timestamp() * 1000)
    log = table.metadata.snapshot_log
    kept = {ref.snapshot_id for ref in table.metadata.refs.values()}
    doomed = []
    for entry, successor in zip(log, log[1:], strict=False):
        if successor.timestamp_ms < cutoff_ms and entry.snapshot_id not in kept:
            doomed.append(entry.snapshot_id)
    live = {s.snapshot_id for s in table.metadata.snapshots}
    return [sid for sid in dict.fromkeys(doomed) if sid in live]


def _referenced(table: Table) -> set[str]:
    """Every file the table's metadata refers to: metadata files, manifest lists, manifests, data files."""
    io = table.io
    out = {file_path(table.metadata_location)}
    out.update(file_path(entry.metadata_file) for entry in table.metadata.metadata_log)
    for snapshot in table.metadata.snapshots:
        out.add(file_path(snapshot.manifest_list))
        for manifest in snapshot.manifests(io):
            out.add(file_path(manifest.manifest_path))
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=True):
                out.add(file_path(entry.data_file.file_path))
    for stats in table.metadata.statistics:
        out.add(file_path(stats.statistics_path))
    return out


def remove_orphans(
    location: StoreLocation, *, grace_s: float, table_name: str = EVENTS, table: Table | None = None
) -> int:
    """Delete files under the table that nothing refers to and that are older than ``grace_s``.

    ``table``: that table, loaded (the store's own record tables); else ``table_name``, events or holdings.
    """
    check_claim(location)  # files another catalog names are not ours to judge orphaned
    table = table or _load(location, table_name)
    fs = location.filesystem()
    base = file_path(table.location())
    try:
        referenced = _referenced(table)
        found = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    except Exception as exc:  # noqa: BLE001
        raise store_error(exc, location, "listing the table's files") from None
    cutoff = time.time() - grace_s
    removed = 0
    for info in found:
        if info.type != pafs.FileType.File or info.path in referenced:
            continue
        mtime = info.mtime.timestamp() if info.mtime is not None else time.time()
        if mtime < cutoff:
            try:
                fs.delete_file(info.path)
                removed += 1
            except OSError as exc:
                log.warning("could not remove an orphan file: %s", exc)
    return removed
