"""Store segments: immutable Parquet files named by the Kafka offsets they cover. The only pyarrow module.

A segment is ``<root>/segments/<source>/p<partition>/<first>-<last>.parquet`` (offsets zero-padded).
It is written to a temporary file, fsynced, renamed into place and the folder fsynced, so a reader
or a restarted consumer sees either all of it or none of it. The names *are* the stored offsets: a
consumer resumes each partition after the highest ``last``, which makes the store exactly-once
whatever Kafka redelivers. A segment whose range lies inside another's is superseded (compaction
left it behind) and is ignored, then deleted after a grace period so that running queries finish.
"""

from __future__ import annotations

import fcntl
import operator
import os
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lineage.contract.records import Record
from lineage.private import private_dir

__all__ = [
    "SEGMENTS",
    "COLUMNS",
    "ColumnBuffer",
    "Segment",
    "list_segments",
    "partition_lock",
    "resume_offsets",
    "write_segment",
]

SEGMENTS = "segments"  # the store's folder of segments: a store is a folder that has one

_NAME = re.compile(r"^(\d{20})-(\d{20})\.parquet$")
_PARTITION = re.compile(r"^p(\d+)$")
_STRING = pa.string()
_TS = pa.timestamp("us", tz="UTC")

# Flat columns: the record's fields with holder/recipient spread out, plus where each event came from.
COLUMNS = pa.schema(
    [
        ("event_id", _STRING),
        ("event_type", _STRING),
        ("occurred_at", _TS),
        ("system", _STRING),
        ("system_region", _STRING),
        ("scope", _STRING),
        ("subject_id", _STRING),
        ("linked_subject_ids", pa.list_(_STRING)),
        ("subject_jurisdiction", _STRING),
        ("age_band", _STRING),
        ("categories", pa.list_(_STRING)),
        ("purpose", _STRING),
        ("legal_basis", _STRING),
        ("consent_ref", _STRING),
        ("consent_kind", _STRING),
        ("consent_status", _STRING),
        ("source", _STRING),
        ("holder_name", _STRING),
        ("holder_role", _STRING),
        ("holder_region", _STRING),
        ("recipient_name", _STRING),
        ("recipient_role", _STRING),
        ("recipient_region", _STRING),
        ("transfer_kind", _STRING),
        ("mechanism", _STRING),
        ("bulk_as_of", _TS),
        ("retention_days", pa.int32()),
        ("encrypted", pa.bool_()),
        ("erasure_outcome", _STRING),
        ("hold_reason", _STRING),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
    ]
)
_ROW_FIELDS = (
    *(name for name in COLUMNS.names if not name.startswith(("holder_", "recipient_", "kafka_"))),
    "holder",
    "recipient",
)
_ROW = operator.itemgetter(*_ROW_FIELDS)
_PARTY = pa.struct([("name", _STRING), ("role", _STRING), ("region", _STRING)])


class ColumnBuffer:
    """Collects records as tuples (one C-level ``itemgetter`` call each) and turns them into columns once."""

    __slots__ = ("_offsets", "_partitions", "_rows")

    def __init__(self) -> None:
        """Start empty."""
        self._rows: list[tuple[Any, ...]] = []
        self._partitions: list[int] = []
        self._offsets: list[int] = []

    @property
    def rows(self) -> int:
        """How many rows are buffered."""
        return len(self._rows)

    def append(self, record: Record, partition: int, offset: int) -> None:
        """Add one validated record and where it came from."""
        self._rows.append(_ROW(record))
        self._partitions.append(partition)
        self._offsets.append(offset)

    def table(self) -> pa.Table:
        """The rows as an Arrow table in ``COLUMNS`` order."""
        transposed = zip(*self._rows, strict=True) if self._rows else (() for _ in _ROW_FIELDS)
        columns: dict[str, Any] = dict(zip(_ROW_FIELDS, transposed, strict=True))
        # parties convert as structs in C, then split into flat columns (a null recipient stays null)
        for party in ("holder", "recipient"):
            struct = pa.array(columns.pop(party), _PARTY).flatten()
            for i, part in enumerate(("name", "role", "region")):
                columns[f"{party}_{part}"] = struct[i]
        columns["kafka_partition"] = self._partitions
        columns["kafka_offset"] = self._offsets
        return pa.table([pa.array(columns[f.name], f.type) for f in COLUMNS], schema=COLUMNS)

    def rows_after(self, offset: int) -> ColumnBuffer:
        """A buffer with only the rows whose Kafka offset is above ``offset`` (used after a rebalance race)."""
        out = ColumnBuffer()
        for row, p, o in zip(self._rows, self._partitions, self._offsets, strict=True):
            if o > offset:
                out._rows.append(row)
                out._partitions.append(p)
                out._offsets.append(o)
        return out


@dataclass(frozen=True, slots=True, order=True)
class Segment:
    """One durable segment file and the offsets it covers (inclusive)."""

    source: str
    partition: int
    first: int
    last: int
    path: Path


def _partition_dir(root: Path, source: str, partition: int) -> Path:
    return root / SEGMENTS / source / f"p{partition}"


@contextmanager
def partition_lock(root: Path, source: str, partition: int) -> Iterator[Path]:
    """Hold the partition's lock (two consumers in a rebalance race publish one after the other)."""
    folder = _partition_dir(root, source, partition)
    private_dir(folder)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield folder
    finally:
        os.close(fd)  # closing releases the lock


def _scan(folder: Path, source: str, partition: int) -> list[Segment]:
    out = []
    for entry in os.scandir(folder):
        m = _NAME.match(entry.name)
        if m:
            out.append(Segment(source, partition, int(m.group(1)), int(m.group(2)), Path(entry.path)))
    return out


def _live(segments: list[Segment]) -> tuple[list[Segment], list[Segment]]:
    """Split into live segments and those superseded by a wider one (left by an interrupted compaction)."""
    live: list[Segment] = []
    superseded: list[Segment] = []
    # widest first at each start, so a covering segment is seen before what it covers
    for seg in sorted(segments, key=lambda s: (s.first, -s.last)):
        if live and seg.last <= live[-1].last:
            superseded.append(seg)
        else:
            live.append(seg)
    return live, superseded


def list_segments(root: Path, *, superseded: bool = False) -> list[Segment]:
    """Every live segment under ``root`` (or, with ``superseded=True``, only the superseded ones)."""
    out: list[Segment] = []
    base = root / SEGMENTS
    if not base.is_dir():
        return out
    for source_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for part_dir in sorted(source_dir.iterdir()):
            m = _PARTITION.match(part_dir.name)
            if m:
                live, old = _live(_scan(part_dir, source_dir.name, int(m.group(1))))
                out.extend(old if superseded else live)
    return out


def resume_offsets(root: Path, source: str) -> dict[int, int]:
    """The next offset to read for each partition that has segments."""
    out: dict[int, int] = {}
    for seg in list_segments(root):
        if seg.source == source:
            out[seg.partition] = max(out.get(seg.partition, 0), seg.last + 1)
    return out


def stored_through(folder: Path, source: str, partition: int) -> int:
    """The highest offset stored for one partition, or -1."""
    return max((s.last for s in _scan(folder, source, partition)), default=-1)


def write_segment(
    root: Path, source: str, partition: int, first: int, last: int, table: pa.Table | None = None
) -> Segment:
    """Write ``table`` (rows may be none: the offsets still count as consumed) as a durable segment.

    The caller holds ``partition_lock`` and has dropped rows at or below ``stored_through``.
    """
    folder = _partition_dir(root, source, partition)
    private_dir(folder)
    final = folder / f"{first:020d}-{last:020d}.parquet"
    tmp = folder / f".tmp-{uuid.uuid4().hex}.parquet"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # the store is personal data
    with os.fdopen(fd, "wb") as f:
        pq.write_table(table if table is not None else COLUMNS.empty_table(), f, compression="zstd")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    _fsync_dir(folder)
    return Segment(source, partition, first, last, final)


def write_merged(segments: Sequence[Segment], table: pa.Table) -> Segment:
    """Write one segment covering ``segments`` (contiguous, one partition) from ``table``."""
    first, last = segments[0], segments[-1]
    return write_segment(
        first.path.parent.parent.parent.parent, first.source, first.partition, first.first, last.last, table
    )


def segment_rows(seg: Segment) -> int:
    """How many rows a segment holds (read from its footer)."""
    return int(pq.ParquetFile(seg.path).metadata.num_rows)


def remove_superseded(root: Path, older_than_s: float) -> int:
    """Delete superseded segments and stale temporary files older than ``older_than_s``; return how many."""
    cutoff = time.time() - older_than_s
    removed = 0
    for seg in list_segments(root, superseded=True):
        if seg.path.stat().st_mtime < cutoff:
            seg.path.unlink(missing_ok=True)
            removed += 1
    for tmp in (root / SEGMENTS).glob("*/p*/.tmp-*"):
        if tmp.stat().st_mtime < cutoff:
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
