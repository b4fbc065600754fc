"""The Avro codec: single-object encoding, every schema version, refusing bad bytes."""

from __future__ import annotations

import dataclasses
import json

import pytest

from lineage import Codec, DecodeError, UnknownSchemaError
from lineage.codec.avro import MAGIC, schema_dir
from lineage.contract.events import AgeBand, PersonalDataEvent
from lineage.contract.records import to_record
from tests.fixtures import sample_events


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: f"{e.event_type}-{e.scope}")
def test_every_event_type_round_trips(event: PersonalDataEvent) -> None:
    """Encoding then decoding gives back an equal event."""
    codec = Codec()
    assert codec.decode(codec.encode(event)) == event


def test_message_carries_the_writer_fingerprint() -> None:
    """A message starts with C3 01 and the current schema's 8-byte fingerprint."""
    codec = Codec()
    data = codec.encode(sample_events()[0])
    assert data[:2] == MAGIC
    assert data[2:10] == codec.current.fingerprint
    assert len(codec.versions) >= 2 and codec.versions[0].fingerprint != codec.current.fingerprint


def test_dataclass_fields_match_the_schema() -> None:
    """The event dataclass has exactly the current schema's fields, in order."""
    codec = Codec()
    schema = json.loads(codec.current.path.read_text())
    assert [f.name for f in dataclasses.fields(PersonalDataEvent)] == [f["name"] for f in schema["fields"]]


def test_older_version_decodes_with_current_reader() -> None:
    """A v1 message (no linked ids, no age band) decodes with defaults for the new fields."""
    codec = Codec()
    event = sample_events()[0]
    v1_record = {k: v for k, v in to_record(event).items() if k not in ("linked_subject_ids", "age_band")}
    data = codec.encode_with(1, v1_record)
    assert data[2:10] == codec.versions[0].fingerprint
    decoded = codec.decode(data)
    assert decoded == dataclasses.replace(event, linked_subject_ids=(), age_band=AgeBand.UNKNOWN)


def test_schema_files_are_found() -> None:
    """The .avsc files are located from the package (checkout or wheel)."""
    assert (schema_dir() / "personal_data_event.v2.avsc").is_file()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "bad header"),
        (b"random bytes that are not avro", "bad header"),
        (MAGIC + b"\x00" * 8 + b"\x01", "unknown writer schema"),
    ],
)
def test_bad_bytes_are_refused(data: bytes, reason: str) -> None:
    """Random bytes and unknown fingerprints raise DecodeError with the reason and position."""
    with pytest.raises(DecodeError, match=reason) as info:
        Codec().decode(data, topic="t", partition=1, offset=7)
    assert info.value.offset == 7 and "partition=1" in str(info.value)


def test_unknown_fingerprint_is_its_own_error() -> None:
    """An unknown fingerprint raises UnknownSchemaError carrying the fingerprint."""
    with pytest.raises(UnknownSchemaError) as info:
        Codec().decode(MAGIC + b"\x01" * 8 + b"\x00")
    assert info.value.fingerprint == b"\x01" * 8


def test_truncated_body_is_refused() -> None:
    """A message cut short raises DecodeError, not a fastavro exception."""
    data = Codec().encode(sample_events()[0])
    with pytest.raises(DecodeError, match="truncated or corrupt"):
        Codec().decode(data[: len(data) // 2])


def test_trailing_bytes_are_refused() -> None:
    """Bytes after the Avro body mean the message is not what it claims."""
    data = Codec().encode(sample_events()[0])
    with pytest.raises(DecodeError, match="trailing bytes"):
        Codec().decode(data + b"\x00\x00")
