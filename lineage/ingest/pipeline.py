"""The ingest pipeline, free of Kafka: messages in, validated rows into segments, bad ones out as data.

The Kafka consumer (``lineage.ingest.consumer``) and the Avro-file backfill both feed an ``Ingestor``, so a
replay from an archive takes the same path as live traffic. A bad message never stops it: it becomes
a ``DeadLetter`` (raw bytes, reason, field, source, partition, offset) for the caller to send on,
and the offsets it occupied still count as consumed once the segment covering them is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lineage.codec.avro import Codec
from lineage.contract.events import DeadLetter
from lineage.contract.records import Record
from lineage.contract.taxonomy import Taxonomy
from lineage.contract.validation import Validator
from lineage.errors import DecodeError, InvalidEventError
from lineage.store.segments import ColumnBuffer, Segment, partition_lock, stored_through, write_segment

__all__ = ["Ingestor"]


@dataclass(slots=True)
class _Pending:
    first: int
    last: int
    rows: ColumnBuffer = field(default_factory=ColumnBuffer)


class Ingestor:
    """Buffers validated rows per partition and writes them as durable segments on ``flush``."""

    def __init__(self, root: Path, source: str, *, taxonomy: Taxonomy, codec: Codec | None = None) -> None:
        """Write segments for ``source`` (a topic name, or a file's name for a backfill) under ``root``."""
        self.root = root
        self.source = source
        self.taxonomy = taxonomy
        self._validator = Validator(taxonomy)
        self.codec = codec or Codec()
        self._pending: dict[int, _Pending] = {}
        self.rows = 0
        self.messages = 0

    def add(
        self,
        partition: int,
        offset: int,
        value: bytes | None,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> DeadLetter | None:
        """Decode, validate and buffer one message; return a dead letter instead if it is bad."""
        try:
            if value is None:
                raise DecodeError("empty message (null value)")
            record = self.codec.decode_record(value)
        except DecodeError as exc:
            self._consumed(partition, offset)
            return DeadLetter(self.source, partition, offset, key, value, tuple(headers or ()), exc.reason)
        return self.add_record(partition, offset, record, key=key, value=value, headers=headers)

    def add_record(
        self,
        partition: int,
        offset: int,
        record: Record,
        *,
        key: bytes | None = None,
        value: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> DeadLetter | None:
        """Validate and buffer one decoded record; return a dead letter instead if it is invalid."""
        pending = self._consumed(partition, offset)
        try:
            self._validator.check(record)
        except InvalidEventError as exc:
            return DeadLetter(self.source, partition, offset, key, value, tuple(headers or ()), str(exc), exc.field)
        pending.rows.append(record, partition, offset)
        self.rows += 1
        return None

    def _consumed(self, partition: int, offset: int) -> _Pending:
        self.messages += 1
        pending = self._pending.get(partition)
        if pending is None:
            pending = self._pending[partition] = _Pending(offset, offset)
        else:
            pending.last = offset
        return pending

    @property
    def buffered_messages(self) -> int:
        """Messages consumed but not yet in a durable segment."""
        return sum(p.last - p.first + 1 for p in self._pending.values())

    def flush(self, partitions: Sequence[int] | None = None) -> list[Segment]:
        """Write a segment per buffered partition (all, or those named); return what was written.

        Under the partition's lock, offsets another consumer already stored (a rebalance race) are
        dropped, so the store holds each offset once.
        """
        written = []
        for partition in sorted(self._pending if partitions is None else set(partitions) & self._pending.keys()):
            pending = self._pending[partition]
            with partition_lock(self.root, self.source, partition) as folder:
                through = stored_through(folder, self.source, partition)
                if pending.last > through:
                    rows = pending.rows if pending.first > through else pending.rows.rows_after(through)
                    first = max(pending.first, through + 1)
                    written.append(write_segment(self.root, self.source, partition, first, pending.last, rows.table()))
            del self._pending[partition]  # only once durable: a failed write keeps the rows for a retry
        return written

    def discard(self, partitions: Sequence[int]) -> None:
        """Drop buffered rows of partitions this process no longer owns without writing them."""
        for partition in partitions:
            self._pending.pop(partition, None)
