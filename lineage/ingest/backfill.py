"""Backfill and replay: an Avro container file into the store through the same path as live traffic.

The file's records get offsets by position, under the source name ``file.<name>``, so a re-run of the
same file resumes after what is stored and stores nothing twice. Invalid records go to the
dead-letter topic like bad Kafka messages.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from lineage.codec.avro import Codec
from lineage.contract.taxonomy import Taxonomy
from lineage.ingest.consumer import IngestStats
from lineage.ingest.pipeline import Ingestor
from lineage.settings import Settings
from lineage.store import StoreLocation
from lineage.transport.clients import dead_letter_sink
from lineage.transport.sink import DeadLetterSink

__all__ = ["ingest_file", "source_name"]


def source_name(path: Path, container_id: str) -> str:
    """The store's source name for a file: its name made safe, and its sync marker to tell files apart.

    A re-run of the same file resumes where it stopped; another file of the same name (a rotated
    archive) is a new source, never mistaken for the first.
    """
    return "file." + re.sub(r"[^A-Za-z0-9._-]", "_", path.name) + "." + container_id[:16]


def ingest_file(
    path: Path,
    settings: Settings,
    *,
    store_dir: Path | StoreLocation | None = None,
    taxonomy: Taxonomy,
    segment_rows: int = 50_000,
) -> IngestStats:
    """Store every valid record of ``path``; send invalid ones to ``settings.dead_letter_topic``.

    The broker is reached only when a first dead letter must be sent: a file of valid records needs
    none. If it cannot be reached then (no broker, no dead-letter topic), ``BrokerError`` is raised
    before anything from the bad record's position on is stored (what was buffered since the last
    commit is dropped, not stored), so a re-run resumes at or before it and loses nothing.
    """
    codec = Codec()
    source = source_name(path, codec.container_id(path))
    location = store_dir if isinstance(store_dir, StoreLocation) else StoreLocation.from_settings(settings, store_dir)
    ingestor = Ingestor(location, source, taxonomy=taxonomy, codec=codec, member="backfill")
    start = ingestor.stored().get(0, 0)
    stats = IngestStats()
    dlq: DeadLetterSink | None = None
    try:
        for offset, record in enumerate(codec.read_container(path)):
            if offset < start:
                continue
            letter = ingestor.add_record(0, offset, record)
            stats.messages += 1
            if letter is None:
                stats.accepted += 1
            else:
                dlq = dlq or dead_letter_sink(settings)
                # a record read with the schema always re-encodes: the dead letter carries its bytes
                dlq.send(replace(letter, value=codec.encode_record(record)))
                stats.dead_letters += 1
            if ingestor.buffered_messages >= segment_rows:
                _flush(ingestor, dlq, stats)
        _flush(ingestor, dlq, stats)
    finally:
        if dlq is not None:
            dlq.close()
    return stats


def _flush(ingestor: Ingestor, dlq: DeadLetterSink | None, stats: IngestStats) -> None:
    """Dead letters durable first, then the commit covering their offsets (as the live consumer does)."""
    if dlq is not None:
        dlq.flush()
    if ingestor.flush():
        stats.commits += 1
