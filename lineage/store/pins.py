"""What a reader pins (``Pinned``), and the pins an embedded store keeps on disk for the next process.

Pinning plans both tables' files through pyiceberg: ~0.2 s, and importing pyiceberg to do it ~1 s,
most of a one-off command's time (``lineage access`` as a process). Iceberg never rewrites a metadata
file, so a pin planned while the catalog named one set of metadata files stays right for as long as
it names that set. An embedded store keeps its last pins in ``<store>/pins.json``
(``StoreLocation.pins_file``; private, replaced whole, never through a symlink), under the tables'
metadata locations and what was asked (the snapshot, with or without holdings); a process whose
catalog names the same set reads them instead of planning. Facts of a pinned read that cost a scan
(the latest event time) are kept beside them.

Kept: file paths, row counts, offsets and snapshot ids; no person's identifier. Pins that carry
more (a base to compute holdings from, manifest bounds on S3) are planned every time.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lineage.store.file_bounds import FileBounds

__all__ = ["FORMAT", "HoldingsState", "Pinned", "Versions", "keep", "kept_fact", "kept_pin"]

log = logging.getLogger(__name__)

#: what a kept pin means: raised whenever ``holdings.pinned_state`` or ``Pinned`` changes, so a file kept
#: by another version of lineage is planned again rather than read
FORMAT = 1
_KEPT = 16  # pins (and facts) a file holds at most: a process asks for one or two
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


def _read(path: Path | None, versions: Versions) -> dict[str, Any]:
    """The pins and facts ``path`` keeps if they were kept for ``versions``, else empty."""
    if path is None:
        return {}
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, encoding="utf-8") as f:
            kept = json.load(f)
    except (OSError, ValueError):  # none kept yet, or not readable as ours: plan as if none
        return {}
    if not isinstance(kept, dict) or kept.get("format") != FORMAT or kept.get("versions") != _listed(versions):
        return {}
    return kept


def kept_pin(path: Path | None, versions: Versions, key: str) -> Pinned | None:
    """The pin ``path`` keeps for ``key`` while the catalog named ``versions`` (None: none kept, or no ``path``)."""
    found = _read(path, versions).get("pins", {}).get(key)
    if not isinstance(found, dict):
        return None
    reflects = found.get("reflects")
    try:
        return Pinned(**{
            **found,
            "reset_files": tuple(found.get("reset_files", ())),
            # JSON names a partition by a string
            "reflects": None if reflects is None else {
                origin: {int(p): int(off) for p, off in parts.items()} for origin, parts in reflects.items()
            },
        })  # fmt: skip
    except (TypeError, ValueError, AttributeError):  # another version's layout: plan again
        return None


def kept_fact(path: Path | None, versions: Versions, name: str) -> Any:
    """A fact ``path`` keeps for the read of ``versions`` (None: not kept)."""
    return _read(path, versions).get("facts", {}).get(name)


def keep(
    path: Path | None,
    versions: Versions,
    *,
    pin: tuple[str, Pinned] | None = None,
    fact: tuple[str, str | None] | None = None,
) -> None:
    """Keep a pin (or a fact of its read) for the next process reading ``versions``; a failure only logs.

    A pin that needs more than its files (a base, bounds from manifests) is not kept; nor anything
    without a ``path`` (a shared store: ``StoreLocation.pins_file``).
    """
    if path is None or (pin is not None and not _keepable(pin[1])):
        return
    from lineage.private import open_private

    kept = _read(path, versions) or {"format": FORMAT, "versions": _listed(versions), "pins": {}, "facts": {}}
    if pin is not None:
        kept["pins"] = _bounded({**kept.get("pins", {}), pin[0]: asdict(pin[1])})
    if fact is not None:
        kept["facts"] = _bounded({**kept.get("facts", {}), fact[0]: fact[1]})
    try:
        with open_private(path, "store_dir", "w") as f:
            json.dump(kept, f)
    except Exception as exc:  # noqa: BLE001 - a reader without write access still answers, planning each time
        log.debug("pins not kept in %s: %s", path.parent, type(exc).__name__)


def _listed(versions: Versions) -> list[list[str]]:
    """``versions`` as JSON gives them back."""
    return [list(v) for v in versions]


def _keepable(pinned: Pinned) -> bool:
    return pinned.base is None and pinned.event_bounds is None and pinned.holdings_bounds is None


def _bounded(entries: dict[str, Any]) -> dict[str, Any]:
    """The newest ``_KEPT`` entries (a dict keeps its insertion order)."""
    return dict(list(entries.items())[-_KEPT:])
