"""The contract's rules beyond types: what each event type needs, checked against the taxonomy.

The emitter runs them before sending and the consumer again on arrival, so a service that bypasses
the SDK still cannot put an invalid event into the store (it goes to the dead-letter topic). They
check records (``lineage.contract.records``), the form both hot paths already hold.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lineage.contract.events import PersonalDataEvent
from lineage.contract.records import MAX_TIME, MIN_TIME, to_record
from lineage.contract.rules import crosses_border
from lineage.contract.taxonomy import Taxonomy
from lineage.errors import InvalidEventError

__all__ = ["MAX_ID", "Validator", "is_cross_border", "validate", "validate_record"]

_NEEDS_PURPOSE = frozenset({"COLLECTED", "SHARED", "TRANSFERRED", "CONSENT"})
_FLOWS = frozenset({"SHARED", "TRANSFERRED"})
_BULK_TYPES = frozenset({"SHARED", "TRANSFERRED", "ERASED"})
#: the longest identifier an event may carry (the console's look-ups share it)
MAX_ID = 512
_MAX_INT32 = 2**31 - 1
_ONLY_FOR = {
    "mechanism": _FLOWS,
    "transfer_kind": frozenset({"TRANSFERRED"}),
    "erasure_outcome": frozenset({"ERASED"}),
    "hold_reason": frozenset({"ERASED"}),
    "consent_status": frozenset({"CONSENT"}),
}
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def validate(event: PersonalDataEvent, taxonomy: Taxonomy) -> None:
    """Raise ``InvalidEventError`` naming the first field of ``event`` that breaks the contract."""
    validate_record(to_record(event), taxonomy)


def validate_record(r: Mapping[str, Any], taxonomy: Taxonomy) -> None:
    """Raise ``InvalidEventError`` naming the first field of record ``r`` that breaks the contract."""
    Validator(taxonomy).check(r)


class Validator:
    """Checks records, remembering the combinations of fields it already found valid.

    A service sends the same system, purpose, parties, mechanism and category lists again and again
    with new subjects; checking such a combination once and then only the per-event fields halves
    the validation cost on the ingest and emit paths. The memory is bounded by ``cache_size``.
    """

    def __init__(self, taxonomy: Taxonomy, cache_size: int = 100_000) -> None:
        """Validate against ``taxonomy``."""
        self.taxonomy = taxonomy
        self.cache_size = cache_size
        self._shapes: set[tuple[Any, ...]] = set()
        self._categories: set[tuple[Any, ...]] = set()

    def check(self, r: Mapping[str, Any]) -> None:
        """Raise ``InvalidEventError`` naming the first field of record ``r`` that breaks the contract."""
        event_id = r["event_id"]
        if not isinstance(event_id, str) or not _UUID.fullmatch(event_id):
            raise InvalidEventError("event_id", event_id, "must be a UUID (8-4-4-4-12 hex digits)")
        _check_subject(r, r["event_type"], self.taxonomy)
        for name in ("occurred_at", "bulk_as_of"):
            t = r[name]
            if t is not None and (type(t) is not int or not MIN_TIME <= t <= MAX_TIME):
                raise InvalidEventError(name, t, "must be a time between the years 1900 and 9999")
        retention = r["retention_days"]
        if retention is not None and (type(retention) is not int or not 0 <= retention <= _MAX_INT32):
            raise InvalidEventError("retention_days", retention, f"must be a whole number of days, 0 to {_MAX_INT32}")
        if r["encrypted"] is not None and type(r["encrypted"]) is not bool:
            raise InvalidEventError("encrypted", r["encrypted"], "must be true, false or absent")
        for name in ("consent_ref", "source", "hold_reason"):
            if r[name] is not None:
                if not isinstance(r[name], str):
                    raise InvalidEventError(name, r[name], "must be a string or absent")
                _check_utf8(name, r[name])
        categories = r["categories"]
        if not categories:
            raise InvalidEventError("categories", categories, "must name at least one data category")
        # written out rather than through a helper taking callables: this runs on every event
        try:
            key: tuple[Any, ...] | None = tuple(categories)
            known = key in self._categories
        except TypeError:  # an unhashable value (from bad input): check it, remember nothing
            key, known = None, False
        if not known:
            for category in categories:
                self.taxonomy.category("categories", category)
            self._remember(self._categories, key)
        try:
            key = _shape_key(r)
            known = key in self._shapes
        except TypeError:
            key, known = None, False
        if not known:
            _check_shape(r, self.taxonomy)
            self._remember(self._shapes, key)

    def _remember(self, seen: set[tuple[Any, ...]], key: tuple[Any, ...] | None) -> None:
        if key is None:
            return
        if len(seen) >= self.cache_size:
            seen.clear()
        seen.add(key)


def _party_key(p: Mapping[str, Any] | None) -> tuple[Any, ...] | None:
    return None if p is None else (p["name"], p["role"], p["region"])


def _shape_key(r: Mapping[str, Any]) -> tuple[Any, ...]:
    """Every field ``_check_shape`` reads; two records with the same key pass or fail together."""
    return (
        r["event_type"],
        r["system"],
        r["system_region"],
        r["purpose"],
        r["legal_basis"],
        _party_key(r["holder"]),
        _party_key(r["recipient"]),
        r["transfer_kind"],
        r["mechanism"],
        r["erasure_outcome"],
        bool(r["hold_reason"]),
        r["consent_status"],
        r["consent_kind"],
    )


def _check_shape(r: Mapping[str, Any], taxonomy: Taxonomy) -> None:
    kind = r["event_type"]
    for name, kinds in _ONLY_FOR.items():
        if r[name] is not None and kind not in kinds:
            raise InvalidEventError(name, r[name], f"does not belong on a {kind} event")
    _check_id("system", r["system"])
    taxonomy.region("system_region", r["system_region"])
    purpose = r["purpose"]
    if purpose is None:
        if kind in _NEEDS_PURPOSE:
            raise InvalidEventError("purpose", None, f"a {kind} event needs a purpose")
    else:
        taxonomy.purpose("purpose", purpose)
    if kind == "COLLECTED" and r["legal_basis"] is None:
        raise InvalidEventError("legal_basis", None, "a COLLECTED event needs a legal basis")
    holder = r["holder"]
    _check_party("holder", holder, taxonomy)
    if kind in _FLOWS:
        _check_flow(r, kind, holder, taxonomy)
    elif r["recipient"] is not None:
        raise InvalidEventError("recipient", r["recipient"]["name"], f"a {kind} event has no recipient")
    if kind == "ERASED":
        outcome = r["erasure_outcome"]
        if outcome is None:
            raise InvalidEventError("erasure_outcome", None, "an ERASED event needs an outcome")
        if outcome == "HOLD" and not r["hold_reason"]:
            raise InvalidEventError("hold_reason", r["hold_reason"], "an erasure on HOLD needs the legal reason")
    elif kind == "CONSENT":
        if r["consent_status"] is None:
            raise InvalidEventError("consent_status", None, "a CONSENT event needs GRANTED or WITHDRAWN")
        if r["consent_kind"] is None:
            raise InvalidEventError("consent_kind", None, "a CONSENT event needs a kind (GENERAL, SEPARATE, GUARDIAN)")


def is_cross_border(event: PersonalDataEvent | Mapping[str, Any], taxonomy: Taxonomy) -> bool:
    """Whether the data leaves the holder's transfer zone (CN to HK is cross-border under PIPL)."""
    if isinstance(event, PersonalDataEvent):
        if event.recipient is None:
            return False
        source, dest = event.holder.region, event.recipient.region
    else:
        if event["recipient"] is None:
            return False
        source, dest = event["holder"]["region"], event["recipient"]["region"]
    taxonomy.region("holder.region", source), taxonomy.region("recipient.region", dest)  # unknown: raise naming it
    return crosses_border(taxonomy, source, dest)


def _check_utf8(field: str, value: str) -> None:
    """Refuse text with no UTF-8 form (a lone surrogate, as a JSON escape of U+D800 gives).

    Python strings may hold them but Avro, Kafka keys and Parquet need UTF-8: caught here, every
    path gets an ``InvalidEventError`` naming the field instead of a ``UnicodeEncodeError`` later.
    ASCII, the common case, is checked without encoding.
    """
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        # InvalidEventError keeps an identifier field's value out of the message (errors.IDENTIFIER_FIELDS)
        raise InvalidEventError(
            field, value, f"is not valid text: character {exc.start} has no UTF-8 encoding (a lone surrogate)"
        ) from None


def _check_id(field: str, value: object) -> None:
    if not isinstance(value, str) or not (stripped := value.strip()):
        raise InvalidEventError(field, value, "must be a non-empty string")
    if len(value) > MAX_ID:
        raise InvalidEventError(field, value, f"must be at most {MAX_ID} characters")
    _check_utf8(field, value)
    # 'bob@example.com ' or 'bob@example.com\n' would be stored as another person than
    # 'bob@example.com', splitting their records: refuse rather than guess a normalisation
    if value != stripped or not value.isprintable():
        raise InvalidEventError(field, value, "must not start or end with spaces or hold control characters")


def _check_subject(r: Mapping[str, Any], kind: str, taxonomy: Taxonomy) -> None:
    if r["scope"] == "SUBJECT":
        _check_id("subject_id", r["subject_id"])
        if r["bulk_as_of"] is not None:
            raise InvalidEventError("bulk_as_of", r["bulk_as_of"], "only a BULK event has bulk_as_of")
    else:
        if r["subject_id"] is not None:
            raise InvalidEventError("subject_id", r["subject_id"], "a BULK event names no subject")
        if kind not in _BULK_TYPES:
            raise InvalidEventError("scope", "BULK", f"a {kind} event is about one subject")
        if r["bulk_as_of"] is None:
            raise InvalidEventError("bulk_as_of", None, "a BULK event needs the time its selection was taken")
        if r["bulk_as_of"] > r["occurred_at"]:
            # the holdings carry what the sender held at the selection: one taken after the send
            # would carry data that was not there when it left (and make answers depend on order)
            raise InvalidEventError("bulk_as_of", r["bulk_as_of"], "is after occurred_at: select before sending")
    for linked in r["linked_subject_ids"]:
        _check_id("linked_subject_ids", linked)
    if r["subject_jurisdiction"] is not None:
        taxonomy.region("subject_jurisdiction", r["subject_jurisdiction"])


def _check_party(field: str, party: Mapping[str, str], taxonomy: Taxonomy) -> None:
    _check_id(f"{field}.name", party["name"])
    taxonomy.role(f"{field}.role", party["role"])
    taxonomy.region(f"{field}.region", party["region"])


def _check_flow(r: Mapping[str, Any], kind: str, holder: Mapping[str, str], taxonomy: Taxonomy) -> None:
    recipient = r["recipient"]
    if recipient is None:
        raise InvalidEventError("recipient", None, f"a {kind} event needs a recipient")
    _check_party("recipient", recipient, taxonomy)
    if recipient["name"] == holder["name"] and recipient["region"] == holder["region"]:
        raise InvalidEventError("recipient.name", recipient["name"], "is the holder itself")
    transfer_kind = r["transfer_kind"]
    if kind == "TRANSFERRED" and transfer_kind is None:
        raise InvalidEventError("transfer_kind", None, "a TRANSFERRED event needs a transfer kind")
    if kind == "SHARED" and transfer_kind is not None:
        raise InvalidEventError("transfer_kind", transfer_kind, "a SHARED event has no transfer kind")
    source = taxonomy.region("holder.region", holder["region"])
    taxonomy.region("recipient.region", recipient["region"])  # unknown: raise naming it
    crossing = crosses_border(taxonomy, holder["region"], recipient["region"])
    if transfer_kind == "CROSS_BORDER" and not crossing:
        raise InvalidEventError(
            "transfer_kind",
            "CROSS_BORDER",
            f"{holder['region']} and {recipient['region']} are in the same zone; not a cross-border transfer",
        )
    mechanism_key = r["mechanism"]
    if mechanism_key is None:
        if crossing:
            raise InvalidEventError(
                "mechanism",
                None,
                f"data leaves {holder['region']} for {recipient['region']}: "
                "a cross-border flow needs a transfer mechanism",
            )
        return
    mechanism = taxonomy.mechanism("mechanism", mechanism_key)
    if crossing and source.regimes and not mechanism.recognised_by(source.regimes):
        raise InvalidEventError(
            "mechanism",
            mechanism_key,
            f"not recognised by {', '.join(source.regimes)}, which governs data leaving {holder['region']}",
        )
