"""The Avro codec: events to and from Avro single-object encoding. The only module importing fastavro.

Each message is ``C3 01`` + the 8-byte little-endian CRC-64-AVRO fingerprint of its writer schema's
canonical form + the Avro binary body (the Avro specification's registry-free "single-object
encoding"). Every ``schemas/personal_data_event.vN.avsc`` is a known writer; the highest N is the
reader, so a message written with an older version still decodes, with defaults for new fields.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from lineage.errors import ConfigurationError, DecodeError, UnknownSchemaError
from lineage.events import (
    AgeBand,
    ConsentKind,
    ConsentStatus,
    ErasureOutcome,
    EventType,
    LegalBasis,
    Party,
    PersonalDataEvent,
    Scope,
    TransferKind,
)

__all__ = ["Codec", "SchemaVersion", "schema_dir"]

MAGIC = b"\xc3\x01"
_HEADER_LEN = 10
_VERSION_FILE = re.compile(r"^personal_data_event\.v(\d+)\.avsc$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def schema_dir() -> Path:
    """The folder holding the ``.avsc`` files: inside the wheel, or ``schemas/`` in a checkout."""
    packaged = Path(__file__).parent / "schemas"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "schemas"


class SchemaVersion:
    """One version of the event schema, parsed, with its fingerprint."""

    __slots__ = ("fingerprint", "number", "parsed", "path")

    def __init__(self, number: int, path: Path) -> None:
        """Parse the schema file and compute its CRC-64-AVRO fingerprint."""
        self.number = number
        self.path = path
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            self.parsed = fastavro.parse_schema(raw, named_schemas={})
        except (OSError, ValueError, fastavro.schema.SchemaParseException) as exc:
            raise ConfigurationError("schemas", f"{path.name} is not a valid Avro schema: {exc}") from exc
        self.fingerprint = bytes.fromhex(fingerprint(to_parsing_canonical_form(self.parsed), "CRC-64-AVRO"))


class Codec:
    """Encodes with the newest schema version; decodes any known version."""

    def __init__(self, directory: Path | None = None) -> None:
        """Load every schema version in ``directory`` (default: ``schema_dir()``)."""
        folder = directory or schema_dir()
        versions = sorted(
            (SchemaVersion(int(m.group(1)), p) for p in folder.glob("*.avsc") if (m := _VERSION_FILE.match(p.name))),
            key=lambda v: v.number,
        )
        if not versions:
            raise ConfigurationError("schemas", f"no personal_data_event.vN.avsc in {folder}")
        self.versions: tuple[SchemaVersion, ...] = tuple(versions)
        self.current = versions[-1]
        self._header = MAGIC + self.current.fingerprint
        self._writers = {v.fingerprint: v for v in versions}

    # -- encoding ---------------------------------------------------------------------------

    def encode(self, event: PersonalDataEvent) -> bytes:
        """Single-object encoding of ``event`` with the current schema."""
        return self.encode_record(to_record(event))

    def encode_record(self, record: Mapping[str, Any]) -> bytes:
        """Single-object encoding of a record dict already in schema shape."""
        buf = io.BytesIO()
        buf.write(self._header)
        fastavro.schemaless_writer(buf, self.current.parsed, record)
        return buf.getvalue()

    def encode_with(self, version: int, record: Mapping[str, Any]) -> bytes:
        """Encode with an older schema version (for compatibility tests and replays)."""
        schema = next((v for v in self.versions if v.number == version), None)
        if schema is None:
            raise ConfigurationError("schemas", f"no schema version {version}")
        buf = io.BytesIO()
        buf.write(MAGIC + schema.fingerprint)
        fastavro.schemaless_writer(buf, schema.parsed, dict(record))
        return buf.getvalue()

    # -- decoding ---------------------------------------------------------------------------

    def decode_record(self, data: bytes, **where: Any) -> dict[str, Any]:
        """Decode to a record dict in the current schema's shape; ``where`` names topic/partition/offset."""
        if len(data) < _HEADER_LEN or data[:2] != MAGIC:
            raise DecodeError("not an Avro single-object message (bad header)", **where)
        writer = self._writers.get(data[2:_HEADER_LEN])
        if writer is None:
            raise UnknownSchemaError(bytes(data[2:_HEADER_LEN]), **where)
        buf = io.BytesIO(data)
        buf.seek(_HEADER_LEN)
        reader = None if writer is self.current else self.current.parsed
        try:
            record: dict[str, Any] = fastavro.schemaless_reader(buf, writer.parsed, reader)  # type: ignore[assignment]
        except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError, UnicodeDecodeError...
            raise DecodeError(f"truncated or corrupt Avro body: {type(exc).__name__}: {exc}", **where) from exc
        if buf.tell() != len(data):
            raise DecodeError(f"{len(data) - buf.tell()} trailing bytes after the Avro body", **where)
        return record

    def decode(self, data: bytes, **where: Any) -> PersonalDataEvent:
        """Decode to an event; ``where`` names topic/partition/offset for error messages."""
        return from_record(self.decode_record(data, **where))


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // _ONE_MICRO


_ONE_MICRO = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - _EPOCH


def _party(p: Party | None) -> dict[str, str] | None:
    return None if p is None else {"name": p.name, "role": p.role, "region": p.region}


def to_record(e: PersonalDataEvent) -> dict[str, Any]:
    """The event as a dict in the schema's shape (times as UTC microseconds)."""
    return {
        "event_id": e.event_id,
        "event_type": e.event_type.value,
        "occurred_at": _micros(e.occurred_at),
        "system": e.system,
        "system_region": e.system_region,
        "scope": e.scope.value,
        "subject_id": e.subject_id,
        "linked_subject_ids": list(e.linked_subject_ids),
        "subject_jurisdiction": e.subject_jurisdiction,
        "age_band": e.age_band.value,
        "categories": list(e.categories),
        "purpose": e.purpose,
        "legal_basis": None if e.legal_basis is None else e.legal_basis.value,
        "consent_ref": e.consent_ref,
        "consent_kind": None if e.consent_kind is None else e.consent_kind.value,
        "consent_status": None if e.consent_status is None else e.consent_status.value,
        "source": e.source,
        "holder": _party(e.holder),
        "recipient": _party(e.recipient),
        "transfer_kind": None if e.transfer_kind is None else e.transfer_kind.value,
        "mechanism": e.mechanism,
        "bulk_as_of": None if e.bulk_as_of is None else _micros(e.bulk_as_of),
        "retention_days": e.retention_days,
        "encrypted": e.encrypted,
        "erasure_outcome": None if e.erasure_outcome is None else e.erasure_outcome.value,
        "hold_reason": e.hold_reason,
    }


def _opt(enum: Any, value: str | None) -> Any:
    return None if value is None else enum(value)


def from_record(r: Mapping[str, Any]) -> PersonalDataEvent:
    """Build an event from a decoded record dict (times already datetimes)."""
    recipient = r["recipient"]
    return PersonalDataEvent(
        event_id=str(r["event_id"]),
        event_type=EventType(r["event_type"]),
        occurred_at=r["occurred_at"],
        system=r["system"],
        system_region=r["system_region"],
        scope=Scope(r["scope"]),
        subject_id=r["subject_id"],
        linked_subject_ids=tuple(r["linked_subject_ids"]),
        subject_jurisdiction=r["subject_jurisdiction"],
        age_band=AgeBand(r["age_band"]),
        categories=tuple(r["categories"]),
        purpose=r["purpose"],
        legal_basis=_opt(LegalBasis, r["legal_basis"]),
        consent_ref=r["consent_ref"],
        consent_kind=_opt(ConsentKind, r["consent_kind"]),
        consent_status=_opt(ConsentStatus, r["consent_status"]),
        source=r["source"],
        holder=Party(**r["holder"]),
        recipient=None if recipient is None else Party(**recipient),
        transfer_kind=_opt(TransferKind, r["transfer_kind"]),
        mechanism=r["mechanism"],
        bulk_as_of=r["bulk_as_of"],
        retention_days=r["retention_days"],
        encrypted=r["encrypted"],
        erasure_outcome=_opt(ErasureOutcome, r["erasure_outcome"]),
        hold_reason=r["hold_reason"],
    )
