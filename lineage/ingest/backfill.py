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
from lineage.private import private_dir
from lineage.settings import Settings
from lineage.store.segments import resume_offsets
from lineage.transport.kafka import DeadLetterProducer

__all__ = ["ingest_file", "source_name"]


def source_name(path: Path, container_id: str) -> str:
    """The store's source name for a file: its name made safe, and its sync marker to tell files apart.

    A re-run of the same file resumes where it stopped; another file of the same name (a rotated
    archive) is a new source, never mistaken for the first.
    """
    return "file." + re.sub(r"[^A-Za-z0-9._-]", "_", path.name) + "." + container_id[:16]


def ingest_file(
    path: Path, settings: Settings, *, store_dir: Path, taxonomy: Taxonomy, segment_rows: int = 50_000
) -> IngestStats:
    """Store every valid record of ``path``; send invalid ones to ``settings.dead_letter_topic``."""
    codec = Codec()
    source = source_name(path, codec.container_id(path))
    private_dir(store_dir)
    ingestor = Ingestor(store_dir, source, taxonomy=taxonomy, codec=codec)
    start = resume_offsets(store_dir, source).get(0, 0)
    stats = IngestStats()
    dlq = DeadLetterProducer(settings)
    try:
        for offset, record in enumerate(codec.read_container(path)):
            if offset < start:
                continue
            letter = ingestor.add_record(0, offset, record)
            stats.messages += 1
            if letter is None:
                stats.accepted += 1
            else:
                # a record read with the schema always re-encodes: the dead letter carries its bytes
                dlq.send(replace(letter, value=codec.encode_record(record)))
                stats.dead_letters += 1
            if ingestor.buffered_messages >= segment_rows:
                dlq.flush()
                stats.segments += len(ingestor.flush())
        dlq.flush()
        stats.segments += len(ingestor.flush())
    finally:
        dlq.close()
    return stats
