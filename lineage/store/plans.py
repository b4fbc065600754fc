"""What a reader pins (``Pinned``), and the plans an embedded store keeps on disk for the next process.

Pinning a read plans both tables' files through pyiceberg: ~0.2 s, and importing pyiceberg to do it
~1 s, most of a one-off command's time (``lineage access`` as a process). Iceberg never rewrites a
metadata file, so a plan made while the catalog named one set of metadata files stays right while it
names that set. An embedded store keeps its last plans in ``<store>/plans.json``
(``StoreLocation.plans_file``), under that set, what was asked (the snapshot, with holdings) and the
holdings layouts the reader reads (``FORMAT``); a process whose catalog names the same set reads them
instead of planning. Facts of a read that cost a scan (the latest event time) are kept beside them.

The file is private and replaced whole (``open_private``: never through a symlink), written only by
the owner of the store's folder, and read only when it is a regular file of ours that no one else
may write, of the shape written here: anything else is planned again. It keeps file paths, row
counts, offsets, snapshot ids and times, no person's identifier; ``forget`` and ``retain`` remove it
(``drop``). A plan carrying more (a base to compute holdings from, manifest bounds on S3), or of a
store holding nothing yet, is not kept.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lineage.store.layout import READS

if TYPE_CHECKING:
    from lineage.store.file_bounds import FileBounds

__all__ = ["FORMAT", "HoldingsState", "Pinned", "Versions", "drop", "keep", "kept_fact", "kept_plan"]

log = logging.getLogger(__name__)

#: what a kept plan means: the format of this file (raised whenever ``holdings.pinned_state`` or
#: ``Pinned`` changes) and the holdings layouts the planner read, so a reader of other layouts plans
#: its own (and refuses the holdings if it cannot read them) rather than read another version's plan
FORMAT = f"2; holdings layouts {','.join(READS)}"
_KEPT = 16  # plans (and facts) a file holds at most: a process asks for one or two
_MAX_BYTES = 4 << 20  # a file larger than this is not ours
#: each table's current metadata file, as the catalog names them (``StoreLocation.versions``)
Versions = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class HoldingsState:
    """Which events the holdings table reflects, and the snapshot that says so."""

    snapshot_id: int | None = None
    source: int | None = None  # the events snapshot they were computed from
    watermark: int | None = None
    applied: dict[str, dict[int, int]] = field(default_factory=dict)  # origin -> partition -> last offset
    layout: str | None = None  # the rows' layout (``LAYOUT`` when written by this version)
    held: bool = False  # some events of ``source`` (after the ``applied`` offsets) were held back


@dataclass(frozen=True, slots=True)
class Pinned:
    """What one reader reads: an events snapshot, and the holdings computed from exactly it."""

    events_snapshot: int | None
    event_files: list[str]
    event_rows: list[int]
    holdings_snapshot: int | None  # None: no stored holdings for it, compute them in memory
    holdings_files: list[str]
    holdings_rows: list[int]
    behind: int = 0  # events stored after the ones the holdings reflect (the answer does not see them)
    # computed in memory after retention: what ``holdings_files`` (stored holdings of an earlier events
    # snapshot) reflect; the computation starts from them, the retired events being gone
    base: HoldingsState | None = None
    retained_before: int | None = None  # the events table's retention cut-off (µs), if retention ran
    # on S3, what the manifests say each file holds (``subject_id``; ``subject`` and ``bucket``): local
    # stores read the footers instead
    event_bounds: list[FileBounds] | None = None
    holdings_bounds: list[FileBounds] | None = None
    reset_files: tuple[str, ...] = ()  # those of ``holdings_files`` holding the resets (``RESETS_BUCKET``)
    # the offsets the holdings reflect, when a refresh held back later events of ``events_snapshot``:
    # the events read are cut to these, so the events and the holdings an answer joins agree (None: all)
    reflects: dict[str, dict[int, int]] | None = None
    # local stores: the bounds above read from the manifests, and whether the event files differ in
    # columns (None: not read so, the footers say both, each file checked as it opens)
    mixed_layouts: bool | None = None


def _read(path: Path | None, versions: Versions) -> dict[str, Any]:
    """The plans and facts ``path`` keeps, if they are ours and were kept for ``versions``; else empty."""
    if path is None:
        return {}
    try:
        # not blocking: a FIFO put there must not hang the reader
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:  # none kept yet (or a symlink): plan
        return {}
    try:
        with os.fdopen(fd, "rb") as f:
            found = os.fstat(f.fileno())
            if not stat.S_ISREG(found.st_mode) or found.st_uid != os.geteuid() or found.st_mode & 0o022:
                return {}  # not a file we wrote, or one someone else may have written
            kept = json.loads(f.read(_MAX_BYTES + 1)[:_MAX_BYTES])
    except (OSError, ValueError, RecursionError):  # unreadable, not JSON, or nested past the parser: plan
        return {}
    if not (isinstance(kept, dict) and kept.get("format") == FORMAT and kept.get("versions") == _listed(versions)
            and isinstance(kept.get("plans"), dict) and isinstance(kept.get("facts"), dict)):  # fmt: skip
        return {}
    return kept


def kept_plan(path: Path | None, versions: Versions, key: str) -> Pinned | None:
    """The plan ``path`` keeps for ``key`` while the catalog named ``versions`` (None: none, or not of our shape)."""
    found = _read(path, versions).get("plans", {}).get(key)
    if not isinstance(found, dict) or set(found) != _FIELDS:
        return None
    files, rows = found["event_files"], found["event_rows"]
    held, held_rows, resets = found["holdings_files"], found["holdings_rows"], found["reset_files"]
    shaped = (
        all(_maybe_long(found[k]) for k in ("events_snapshot", "holdings_snapshot", "retained_before"))
        and found["events_snapshot"] is not None
        and _texts(files) and _counts(rows) and len(files) == len(rows)
        and _texts(held) and _counts(held_rows) and len(held) == len(held_rows)
        and _texts(resets) and set(resets) <= set(held)
        and _counts([found["behind"]])
        and found["base"] is None and found["event_bounds"] is None and found["holdings_bounds"] is None
        and found["mixed_layouts"] is None
    )  # fmt: skip
    reflects = _offsets(found["reflects"])
    if not shaped or reflects is False:
        return None
    return Pinned(**{**found, "reset_files": tuple(resets), "reflects": reflects})


def kept_fact(path: Path | None, versions: Versions, name: str) -> str | None:
    """A fact ``path`` keeps for the read of ``versions`` (None: not kept); its reader checks its text."""
    found = _read(path, versions).get("facts", {}).get(name)
    return found if isinstance(found, str) else None


def keep(
    path: Path | None,
    versions: Versions,
    *,
    plan: tuple[str, Pinned] | None = None,
    fact: tuple[str, str | None] | None = None,
) -> None:
    """Keep a plan (or a fact of its read) for the next process reading ``versions``; a failure only logs.

    Nothing is kept without a ``path`` (a shared store: ``StoreLocation.plans_file``), by a process
    that does not own the store's folder (its file would be one the owner may not read), or for a
    plan that is not keepable (see the module docstring).
    """
    if path is None or (plan is not None and not _keepable(plan[1])):
        return
    try:
        if path.parent.stat().st_uid != os.geteuid():
            return
    except OSError:
        return
    from lineage.private import open_private

    kept = _read(path, versions) or {"format": FORMAT, "versions": _listed(versions), "plans": {}, "facts": {}}
    if plan is not None:
        kept["plans"] = _bounded({**kept["plans"], plan[0]: asdict(plan[1])})
    if fact is not None:
        kept["facts"] = _bounded({**kept["facts"], fact[0]: fact[1]})
    try:
        with open_private(path, "store_dir", "w") as f:
            json.dump(kept, f)
    except Exception as exc:  # noqa: BLE001 - a reader that cannot write still answers, planning each time
        log.debug("plans not kept in %s: %s", path.parent, type(exc).__name__)


def drop(path: Path | None) -> None:
    """Remove the kept plans (``forget`` and ``retain``: the file may name the times of what they removed)."""
    if path is not None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:  # a folder put there: not ours, and never read as plans
            log.debug("plans not removed from %s: %s", path.parent, type(exc).__name__)


_FIELDS = frozenset(f.name for f in fields(Pinned))


def _keepable(pinned: Pinned) -> bool:
    stored = pinned.events_snapshot is not None  # else the store holds nothing: a reader leaves no file
    return stored and pinned.base is None and pinned.event_bounds is None and pinned.holdings_bounds is None


def _listed(versions: Versions) -> list[list[str]]:
    """``versions`` as JSON gives them back."""
    return [list(v) for v in versions]


def _bounded(entries: dict[str, Any]) -> dict[str, Any]:
    """The last ``_KEPT`` entries in the order first kept (a dict keeps its insertion order)."""
    return dict(list(entries.items())[-_KEPT:])


def _long(value: object) -> bool:
    """An int (not a bool) a 64-bit column holds."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _maybe_long(value: object) -> bool:
    return value is None or _long(value)


def _texts(values: object) -> bool:
    return isinstance(values, list) and all(isinstance(v, str) for v in values)


def _counts(values: object) -> bool:
    """Row counts, offsets: 64-bit ints, none negative."""
    return isinstance(values, list) and all(_long(v) and v >= 0 for v in values)


def _offsets(value: object) -> dict[str, dict[int, int]] | None | bool:
    """``reflects`` as kept (JSON names a partition by a string); False when not of that shape."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(parts, dict) for parts in value.values()):
        return False
    for parts in value.values():
        if not all(isinstance(p, str) and p.isdigit() for p in parts) or not _counts(list(parts.values())):
            return False
    return {str(origin): {int(p): off for p, off in parts.items()} for origin, parts in value.items()}
