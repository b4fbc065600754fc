"""Which files make up one snapshot of the events table, and naming snapshots so answers can be redone.

A regulator may ask, months later, how an answer was reached: every answer reads one snapshot, its id
is reported, and ``pin`` tags it so snapshot expiry keeps it (and its files) until the tag is removed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pyiceberg.manifest import DataFile
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation, Snapshot

from lineage.errors import ConfigurationError, StoreError
from lineage.private import private_files
from lineage.store.catalog import StoreLocation, store_error
from lineage.store.claim import check_claim

__all__ = [
    "SnapshotRef",
    "describe_snapshots",
    "file_path",
    "only_appended",
    "pin",
    "pinned_files",
    "resolve",
    "snapshot_data_files",
    "snapshot_files",
]

SnapshotRef = int | str | None
"""A snapshot id, a tag's name, or None for the current snapshot."""


def resolve(table: Table, ref: SnapshotRef) -> Snapshot | None:
    """The snapshot ``ref`` names (None: the current one, which is None for a table never written)."""
    if ref is None:
        return table.current_snapshot()
    snapshot = None
    if isinstance(ref, str) and not ref.lstrip("-").isdigit():
        snapshot = table.snapshot_by_name(ref)
    else:
        snapshot = table.snapshot_by_id(int(ref))
    if snapshot is None:
        raise ConfigurationError(
            "--snapshot", f"the store has no snapshot {ref!r} (expired, or never made): `lineage snapshots` lists them"
        )
    return snapshot


def file_path(location: str) -> str:
    """A data file's location as a pyarrow filesystem path: ``file:///x`` -> ``/x``, ``s3://b/k`` -> ``b/k``.

    Java engines (Spark's Hadoop file IO) write local locations as ``file:/x``, with one slash.
    """
    if location.startswith("file:"):
        rest = location[len("file:") :]
        return "/" + rest.lstrip("/")
    for scheme in ("s3://", "s3a://", "s3n://"):
        if location.startswith(scheme):
            return location[len(scheme) :]
    return location


def pinned_files(location: StoreLocation, ref: SnapshotRef) -> tuple[int | None, list[str], list[int]]:
    """The snapshot ``ref`` resolves to now, the paths of exactly its data files, and each one's row count."""
    table = location.load()
    snapshot = resolve(table, ref)
    if snapshot is None:
        return None, [], []
    paths, rows = snapshot_files(location, table, snapshot.snapshot_id)
    return snapshot.snapshot_id, paths, rows


def snapshot_files(location: StoreLocation, table: Table, snapshot_id: int) -> tuple[list[str], list[int]]:
    """The paths of one snapshot's data files of ``table``, and each one's row count."""
    files = snapshot_data_files(location, table, snapshot_id)
    return [file_path(f.file_path) for f in files], [f.record_count for f in files]


def snapshot_data_files(
    location: StoreLocation, table: Table, snapshot_id: int, *, replacing: bool = False
) -> list[DataFile]:
    """One snapshot's data files of ``table``, as its manifests describe them.

    ``replacing``: the caller replaces every row (a rebuild), so another engine's row-level deletes
    do not matter; else they are refused, as rows read past them would be wrong.
    """
    try:
        tasks = list(table.scan(snapshot_id=snapshot_id).plan_files())
    except Exception as exc:  # noqa: BLE001
        raise store_error(exc, location, "planning the snapshot's files") from None
    if not replacing and any(task.delete_files for task in tasks):
        # we never write delete files; another engine's row-level delete would be silently ignored
        raise StoreError(
            f"{location.describe()} has row-level delete files (written by another engine); "
            "compact it with that engine before reading",
            path=location.describe(),
        )
    return [task.file for task in tasks]


def pin(location: StoreLocation, name: str, ref: SnapshotRef = None) -> int:
    """Tag a snapshot (default: the current one) as ``name`` so expiry keeps it; return its id."""
    if not name or name == "main" or name.lstrip("-").isdigit() or name.strip() != name:
        raise ConfigurationError(
            "--pin", f"{name!r} cannot name a snapshot: not 'main', not a number, no edge spaces (or empty)"
        )
    check_claim(location)  # a tag is a commit: a new metadata file in the warehouse
    table = location.load()
    if name in table.metadata.refs:
        raise ConfigurationError("--pin", f"{name!r} already names a snapshot; pins are never moved: choose a new name")
    snapshot = resolve(table, ref)
    if snapshot is None:
        raise StoreError(f"{location.describe()} holds no snapshot to pin", path=location.describe())
    try:
        with private_files():
            table.manage_snapshots().create_tag(snapshot.snapshot_id, name).commit()
    except ValueError as exc:
        raise ConfigurationError("--pin", str(exc).splitlines()[0][:200]) from None
    except Exception as exc:  # noqa: BLE001
        raise store_error(exc, location, "pinning a snapshot") from None
    return snapshot.snapshot_id


def describe_snapshots(location: StoreLocation) -> list[str]:
    """One line per snapshot, oldest first: id, time, operation, rows added, and its tags."""
    table = location.load()
    tags: dict[int, list[str]] = {}
    for name, ref in table.metadata.refs.items():
        if name != "main":
            tags.setdefault(ref.snapshot_id, []).append(name)
    lines = []
    for snapshot in table.metadata.snapshots:
        when = datetime.fromtimestamp(snapshot.timestamp_ms / 1000, UTC).isoformat(timespec="seconds")
        summary = snapshot.summary
        operation = summary.operation.value if summary is not None else "?"
        added = summary.get("added-records", "0") if summary is not None else "0"
        named = f" tags={','.join(sorted(tags[snapshot.snapshot_id]))}" if snapshot.snapshot_id in tags else ""
        lines.append(f"{snapshot.snapshot_id} {when} {operation} added_rows={added}{named}")
    return lines


def only_appended(
    location: StoreLocation, since: int | None, until: int | None, *, table: Table | None = None
) -> bool:
    """Whether the events table went from snapshot ``since`` to ``until`` by appends alone (rows only added).

    False when anything between them removed or rewrote rows (``lineage forget``, ``retain``,
    compaction), when ``since`` is no longer in ``until``'s history (expired: a forget drops the
    history), or when either is unknown: what was read at ``since`` may hold rows that are gone.
    ``table``: the events table already loaded at ``until`` or later (not loaded again).
    """
    if since is None or until is None:
        return False
    if since == until:
        return True
    if table is None:
        try:
            table = location.load()
        except Exception as exc:  # noqa: BLE001
            raise store_error(exc, location, "reading the events table's history") from None
    snapshot = table.snapshot_by_id(until)
    while snapshot is not None and snapshot.snapshot_id != since:
        if snapshot.summary is None or snapshot.summary.operation != Operation.APPEND:
            return False
        parent = snapshot.parent_snapshot_id
        snapshot = None if parent is None else table.snapshot_by_id(parent)
    return snapshot is not None
