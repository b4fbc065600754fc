"""The ingest pipeline, free of Kafka: messages in, validated rows into the store, bad ones out as data.

The Kafka consumer (``lineage.ingest.consumer``) and the Avro-file backfill both feed an ``Ingestor``, so a
replay from an archive takes the same path as live traffic. A bad message never stops it: it becomes
a ``DeadLetter`` (raw bytes, reason, field, source, partition, offset) for the caller to send on,
and the offsets it occupied still count as consumed once the commit covering them is made.

A message's provenance headers (``lineage.transport.provenance``) are stored beside its row; an
unusable header is stored as null and counted (``bad_headers``), never a reason for a dead letter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from lineage.codec.avro import Codec
from lineage.contract.events import DeadLetter
from lineage.contract.records import Record
from lineage.contract.taxonomy import Taxonomy
from lineage.contract.validation import Validator
from lineage.errors import DecodeError, InvalidEventError
from lineage.store import PartitionRows, Stored, StoreLocation, TableWriter
from lineage.store.catalog import as_location
from lineage.transport.provenance import NONE, Provenance, read_provenance

__all__ = ["Ingestor"]


class Ingestor:
    """Buffers validated rows per partition and commits them, with their offsets, on ``flush``."""

    def __init__(
        self,
        store: Path | StoreLocation,
        source: str,
        *,
        taxonomy: Taxonomy,
        codec: Codec | None = None,
        member: str = "ingest",
    ) -> None:
        """Store rows of ``source`` (a topic name, or a file's name for a backfill) in ``store``."""
        self.location = as_location(store)
        self.source = source
        self.taxonomy = taxonomy
        self._validator = Validator(taxonomy)
        self.codec = codec or Codec()
        self.writer = TableWriter(self.location, source, member=member)
        self._pending: dict[int, PartitionRows] = {}
        self.rows = 0
        self.messages = 0
        self.bad_headers = 0  # provenance headers stored as null because they were unusable

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
        provenance = read_provenance(headers)
        self.bad_headers += provenance.bad
        return self.add_record(partition, offset, record, key=key, value=value, headers=headers, provenance=provenance)

    def add_record(
        self,
        partition: int,
        offset: int,
        record: Record,
        *,
        key: bytes | None = None,
        value: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
        provenance: Provenance = NONE,
    ) -> DeadLetter | None:
        """Validate and buffer one decoded record (with its provenance); return a dead letter instead if invalid."""
        pending = self._consumed(partition, offset)
        try:
            self._validator.check(record)
        except InvalidEventError as exc:
            return DeadLetter(self.source, partition, offset, key, value, tuple(headers or ()), str(exc), exc.field)
        pending.rows.append(record, offset, (provenance.via, provenance.name, provenance.run))
        self.rows += 1
        return None

    def _consumed(self, partition: int, offset: int) -> PartitionRows:
        self.messages += 1
        pending = self._pending.get(partition)
        if pending is None:
            pending = self._pending[partition] = PartitionRows(offset, offset)
        else:
            pending.last = offset
        return pending

    @property
    def buffered_messages(self) -> int:
        """Messages consumed but not yet committed to the store."""
        return sum(p.last - p.first + 1 for p in self._pending.values())

    def stored(self) -> dict[int, int]:
        """The next offset to read of each partition of this source the store holds anything of."""
        return {p: last + 1 for p, last in self.writer.stored().items()}

    def claim(self, partitions: Iterable[int]) -> dict[int, int]:
        """Own ``partitions`` (fencing their previous writer); the next offset to read of each stored one."""
        return self.writer.claim(partitions)

    def flush(self, partitions: Sequence[int] | None = None) -> list[Stored]:
        """Commit the buffered partitions (all, or those named) in one commit; return what was stored.

        Offsets another writer already stored (a rebalance race) are dropped, so the store holds
        each offset once; partitions another writer now owns are dropped (``writer.fenced``).
        """
        chosen = sorted(self._pending if partitions is None else set(partitions) & self._pending.keys())
        if not chosen:
            return []
        stored = self.writer.commit({p: self._pending[p] for p in chosen})
        for p in chosen:
            del self._pending[p]  # only once committed: a failed commit keeps the rows for a retry
        return stored

    def discard(self, partitions: Iterable[int]) -> None:
        """Drop buffered rows of partitions this process no longer owns without storing them."""
        gone = list(partitions)
        for partition in gone:
            self._pending.pop(partition, None)
        self.writer.release(gone)
