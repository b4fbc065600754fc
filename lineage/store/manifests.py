"""The data files of a small append-only table's current snapshot, read from its metadata with fastavro.

A one-off command that checks the erasure certificates imported pyiceberg (~0.9 s) to list a few
small files. For a table of data files only the rule is short: the current snapshot's manifest list
names its manifests, and each entry of a data manifest not marked deleted is a live file. Anything
else (delete files, a location not on this disk, a shape not described here) is ``None``: the caller
plans the table with pyiceberg, which reads every shape and reports a damaged file properly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["LiveFile", "live_files", "local_path"]

_DELETED = 2  # a manifest entry's status: the file left the table in that snapshot
_DATA = 0  # the content of a manifest (and of a file): data, not deletes


@dataclass(frozen=True, slots=True)
class LiveFile:
    """A data file of the snapshot: its local path and the rows the manifest says it holds."""

    path: str
    rows: int


def local_path(location: str) -> str | None:
    """The local path of a ``file:`` location (``file:///p``, or Hadoop's ``file:/p``) or a bare path; else None."""
    if location.startswith("file:"):
        location = "/" + location.removeprefix("file:").lstrip("/")
    return location if location.startswith("/") else None


def live_files(metadata_location: str) -> list[LiveFile] | None:
    """The current snapshot's data files (empty: no snapshot yet); None: a table to plan with pyiceberg."""
    try:
        return _live_files(metadata_location)
    except Exception:  # noqa: BLE001 - any surprise is pyiceberg's to plan, and to report if the file is damaged
        return None


def _live_files(metadata_location: str) -> list[LiveFile] | None:
    from lineage.codec.avro import container_records

    path = local_path(metadata_location)
    if path is None:
        return None
    with open(path, encoding="utf-8") as f:
        metadata = json.load(f)
    if metadata.get("format-version") not in (1, 2):
        return None
    current = metadata.get("current-snapshot-id")
    if current is None or current == -1:
        return []
    snapshot = next(s for s in metadata["snapshots"] if s["snapshot-id"] == current)
    listed = local_path(snapshot["manifest-list"])  # a v1 snapshot naming its manifests inline has none: None
    if listed is None:
        return None
    found: list[LiveFile] = []
    for manifest in container_records(listed):
        if manifest.get("content", _DATA) != _DATA or (where := local_path(manifest["manifest_path"])) is None:
            return None
        for entry in container_records(where):
            data = entry["data_file"]
            if data.get("content", _DATA) != _DATA or str(data["file_format"]).upper() != "PARQUET":
                return None
            if entry["status"] == _DELETED:
                continue
            if (file := local_path(data["file_path"])) is None:
                return None
            found.append(LiveFile(file, int(data["record_count"])))
    return found

