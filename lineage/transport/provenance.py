"""Provenance: how an event reached Kafka (the SDK, the gateway's JSON door, its OpenLineage door).

Carried as Kafka record headers, not in the event: it is transport metadata, so the Avro contract
and its JSON Schema stay as they are, and an event means the same whichever door it came through.
Three headers, all UTF-8 text:

- ``lineage.via``: ``sdk``, ``gateway`` or ``openlineage``;
- ``lineage.via.name``: the SDK's version, the gateway token's name, or the OpenLineage job
  (``namespace/name``);
- ``lineage.via.run``: the OpenLineage run id (only that door sets it).

The emitting side builds them here; the consumer reads them back with ``read_provenance``. Headers
are untrusted input (any producer may set any): a value that is too long, not UTF-8 text, or not
one of the known doors is read as absent and counted, never a reason to refuse the event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lineage.transport.sink import Headers

__all__ = [
    "MAX_NAME",
    "MAX_RUN",
    "VIA",
    "VIA_NAME",
    "VIA_RUN",
    "Provenance",
    "gateway_headers",
    "openlineage_headers",
    "read_provenance",
    "sdk_headers",
]

VIA = "lineage.via"
VIA_NAME = "lineage.via.name"
VIA_RUN = "lineage.via.run"
DOORS = frozenset({"sdk", "gateway", "openlineage"})
#: the longest name (a job's namespace/name) and run id kept, in characters; longer ones are dropped
MAX_NAME = 200
MAX_RUN = 64


@dataclass(frozen=True, slots=True)
class Provenance:
    """What the headers of one message say of its way in (None where absent or unusable)."""

    via: str | None = None
    name: str | None = None
    run: str | None = None
    bad: int = 0  # headers present but unusable (too long, not text, unknown door): counted by the consumer


NONE = Provenance()


def sdk_headers(version: str) -> Headers:
    """The headers of an event sent by the Python SDK (or ``lineage emit``) of ``version``."""
    return ((VIA, b"sdk"), (VIA_NAME, _cut(version, MAX_NAME)))


def gateway_headers(token_name: str) -> Headers:
    """The headers of an event posted to the gateway's JSON door with the token named ``token_name``."""
    return ((VIA, b"gateway"), (VIA_NAME, _cut(token_name, MAX_NAME)))


def openlineage_headers(namespace: str, name: str, run_id: str) -> Headers:
    """The headers of a flow event made from the OpenLineage run ``run_id`` of the job ``namespace/name``."""
    return ((VIA, b"openlineage"), (VIA_NAME, _cut(f"{namespace}/{name}", MAX_NAME)), (VIA_RUN, _cut(run_id, MAX_RUN)))


def _cut(text: str, limit: int) -> bytes:
    """``text`` as UTF-8, shortened to ``limit`` characters so the consumer keeps it (never refused)."""
    return text[:limit].encode("utf-8", "replace")


# Headers read before, and what they said: a producer's headers repeat message after message, and
# reading them afresh cost ~7 us a message (a third of the ingest budget); a look-up costs well under
# one. Only usable ones are kept (bounded in size by MAX_NAME and MAX_RUN), and at most _KEEP.
_READ: dict[tuple[tuple[str, bytes | None], ...], Provenance] = {}
_KEEP = 4096
_OURS = frozenset((VIA, VIA_NAME, VIA_RUN))


def read_provenance(headers: Sequence[tuple[str, bytes | None]] | None) -> Provenance:
    """The provenance in a message's headers; unusable values are None and counted in ``bad``.

    The first header of each name counts; a message without ``lineage.via`` (an older producer)
    has no provenance and nothing bad.
    """
    if not headers:
        return NONE
    # only lineage's own headers make the key: others (a trace id per message, a producer's bulk)
    # would make every key new and the memory as large as what any producer sends
    key = tuple(pair for pair in headers if pair[0] in _OURS)
    known = _READ.get(key)
    if known is not None:
        return known
    read = _read(key)
    if read.bad == 0 and len(key) <= len(_OURS) and all(v is None or len(v) <= 4 * MAX_NAME for _, v in key):
        if len(_READ) >= _KEEP:
            _READ.clear()
        _READ[key] = read
    return read


def _read(headers: Sequence[tuple[str, bytes | None]]) -> Provenance:
    found: dict[str, bytes | None] = {}
    for key, value in headers:
        if key in (VIA, VIA_NAME, VIA_RUN) and key not in found:
            found[key] = value
    if not found:
        return NONE
    bad = 0
    via = _text(found.get(VIA), 16)
    if via is not None and via not in DOORS:
        via = None
    if via is None and VIA in found:
        bad += 1
    name = _text(found.get(VIA_NAME), MAX_NAME)
    bad += name is None and VIA_NAME in found
    run = _text(found.get(VIA_RUN), MAX_RUN)
    bad += run is None and VIA_RUN in found
    if via is None:  # a name or run without a known door says nothing trustworthy
        return Provenance(bad=bad + (name is not None) + (run is not None))
    return Provenance(via, name, run, bad)


def _text(value: bytes | None, limit: int) -> str | None:
    """``value`` as text of at most ``limit`` printable characters, else None."""
    if value is None or len(value) > 4 * limit:  # cheap bound before decoding a huge header
        return None
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text or len(text) > limit or not text.isprintable():
        return None
    return text
