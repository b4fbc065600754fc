"""JSON lines to events, for ``lineage emit``: services in other languages and shell scripts.

One JSON object per line, with the schema's field names; enum values in any case; times as ISO 8601
with an offset (``2026-05-01T08:00:00+08:00`` or ``...Z``); ``holder``/``recipient`` as objects
``{"name", "role", "region"}``. ``system``/``system_region`` default to the command's flags.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, TypeVar

from lineage.contract.events import Party, PersonalDataEvent
from lineage.contract.records import Record, from_record, record_of, to_record
from lineage.contract.taxonomy import Taxonomy
from lineage.contract.validation import Validator
from lineage.errors import InputLineError, InvalidEventError, shown_name
from lineage.sdk.prepared import MAX_EVENT_BYTES

__all__ = [
    "MAX_EVENT_BYTES",
    "event_to_json",
    "message_size_check",
    "has_no_surrogates",
    "parse_lines",
    "parse_object",
    "read_object",
]

T = TypeVar("T")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # JSON's escape of a UTF-16 surrogate, \ud800 to \udfff

_TIMES = ("occurred_at", "bulk_as_of")
_PARTIES = ("holder", "recipient")
_PARTY_FIELDS = {"name", "role", "region"}


def parse_lines(
    lines: Iterable[str],
    *,
    system: str | None,
    region: str | None,
    taxonomy: Taxonomy,
    check: Callable[[PersonalDataEvent], None] | None = None,
) -> Iterator[PersonalDataEvent | InputLineError]:
    """Yield a validated event per non-blank line, or an ``InputLineError`` naming the line and field.

    ``check`` (the sender's own limits, e.g. the largest message) runs on each valid event; an
    ``InputLineError`` or ``InvalidEventError`` it raises becomes that line's error.
    """
    validator = Validator(taxonomy)
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            obj = _load(text)
        except InputLineError as exc:
            yield InputLineError(number, exc.reason, exc.field)
            continue
        item = parse_object(obj, system=system, region=region, validator=validator, check=check)
        yield item if isinstance(item, PersonalDataEvent) else InputLineError(number, item.reason, item.field)


def parse_object(
    obj: object,
    *,
    system: str | None,
    region: str | None,
    validator: Validator,
    check: Callable[[PersonalDataEvent], None] | None = None,
) -> PersonalDataEvent | InputLineError:
    """One decoded JSON value as a validated event, or an ``InputLineError`` (line 0) naming the field.

    The one home of reading an event from JSON: ``lineage emit`` gives it each line's object, the
    HTTP gateway each object of a request's batch. One ``validator`` for many objects remembers the
    combinations of fields it found valid (a fresh one per object made reading 3x slower).
    """

    def finish(record: Record) -> PersonalDataEvent:
        event = from_record(record)
        validator.check(to_record(event))
        if check is not None:
            check(event)
        return event

    return read_object(obj, system=system, region=region, finish=finish)


def read_object(
    obj: object, *, system: str | None, region: str | None, finish: Callable[[Record], T], utf8_known: bool = False
) -> T | InputLineError:
    """One decoded JSON value as a record, made into what ``finish`` returns, or an ``InputLineError``.

    ``finish`` validates the record (``parse_object``: into a typed event; the gateway: into a
    ``Prepared`` message, encoded once). An ``InvalidEventError`` or ``InputLineError`` it raises
    becomes the object's error. ``utf8_known``: the caller knows every string has a UTF-8 form
    (``has_no_surrogates`` of the JSON text), so each is not looked at again.
    """
    try:
        return finish(_parse(obj, system, region, utf8_known))
    except InvalidEventError as exc:
        return InputLineError(0, str(exc), exc.field)
    except InputLineError as exc:
        return exc
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # whatever else one hostile object can provoke stays that object's error: the ones after
        # it are still read and sent. Only the kind is named; the message could quote the input.
        return InputLineError(0, f"cannot be read as an event ({type(exc).__name__})")


def message_size_check(encode: Callable[[PersonalDataEvent], bytes]) -> Callable[[PersonalDataEvent], None]:
    """A ``check`` refusing an event whose encoding (by ``encode``) is over Kafka's ``MAX_EVENT_BYTES``."""

    def fits(event: PersonalDataEvent) -> None:
        size = len(encode(event))
        if size > MAX_EVENT_BYTES:
            raise InputLineError(
                0, f"the event encodes to {size:,} bytes, over Kafka's {MAX_EVENT_BYTES:,} per message"
            )

    return fits


def _load(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputLineError(0, f"not valid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise InputLineError(0, "not valid JSON here: nested too deeply") from None
    except ValueError:  # Python refuses integers of more than 4300 digits (a denial-of-service guard)
        raise InputLineError(0, "not valid JSON here: a number has too many digits") from None


def has_no_surrogates(text: bytes) -> bool:
    r"""Whether ``json.loads(text)`` surely holds no lone surrogate: ASCII, no NUL, no ``\ud800``-``\udfff`` escape.

    One scan of a request's body in C instead of a walk of every string of every event in Python
    (5% of the gateway's time). Other bodies are read string by string, as ``lineage emit``'s lines.
    No NUL: ``json.loads`` reads UTF-16 and UTF-32 without a BOM, whose bytes are ASCII with NULs
    between the characters of an escape (JSON in UTF-8 has no raw NUL).
    """
    return text.isascii() and b"\x00" not in text and _SURROGATE_ESCAPE.search(text) is None


def _parse(obj: object, system: str | None, region: str | None, utf8_known: bool = False) -> Record:
    if not isinstance(obj, dict):
        raise InputLineError(0, f"expected a JSON object, got {type(obj).__name__}")
    fields: dict[str, Any] = dict(obj)
    if not utf8_known:
        _check_text(fields)
    sys_name = fields.pop("system", system)
    sys_region = fields.pop("system_region", region)
    if not sys_name:
        raise InputLineError(0, "system is missing: name the emitting system (lineage emit: or --system)", "system")
    if not sys_region:
        raise InputLineError(
            0, "system_region is missing: where the system runs (lineage emit: or --region)", "system_region"
        )
    event_type = fields.pop("event_type", None)
    if event_type is None:
        raise InputLineError(
            0, "event_type is missing (COLLECTED, SHARED, TRANSFERRED, ERASED or CONSENT)", "event_type"
        )
    for name in _TIMES:
        if isinstance(fields.get(name), str):
            fields[name] = _time(name, fields[name])
    for name in _PARTIES:
        if fields.get(name) is not None:
            fields[name] = _party(name, fields[name])
    return record_of(event_type, sys_name, sys_region, fields)


def _check_text(fields: dict[str, Any]) -> None:
    r"""Refuse a line holding a string with no UTF-8 form, naming its top-level field.

    JSON lets ``"\ud800"`` (half a surrogate pair) through, and ``lineage emit`` reads undecodable
    bytes as such halves (``surrogateescape``); neither can be encoded for Kafka, so the line is
    refused here rather than failing the send.
    """
    for key, value in fields.items():
        stack: list[Any] = [key, value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                if not _is_text(item):
                    name = key if _is_text(key) else "a field name"
                    raise InputLineError(
                        0, f"{shown_name(name)}: holds text that is not valid UTF-8 (bytes that are not UTF-8, "
                        "or a lone surrogate such as \\ud800)", name if name == key else None,
                    )  # fmt: skip
            elif isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)


def _is_text(text: str) -> bool:
    """Whether ``text`` has a UTF-8 form: no lone surrogate (U+D800 to U+DFFF) in it.

    Asked of every string of every event read, so it is asked of the codec (in C), not char by char
    in Python (which cost a third of reading an event).
    """
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _time(field: str, value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEventError(field, value, "not an ISO 8601 time") from None


def _party(field: str, value: object) -> Party:
    if not isinstance(value, dict):
        raise InvalidEventError(field, value, "must be an object with name, role and region")
    missing = _PARTY_FIELDS - value.keys()
    extra = value.keys() - _PARTY_FIELDS
    if missing or extra:
        what = f"missing {sorted(missing)}" if missing else f"unknown {sorted(extra)}"
        raise InvalidEventError(field, value, f"must have exactly name, role and region ({what})")
    return Party(name=value["name"], role=value["role"], region=value["region"])


def event_to_json(event: PersonalDataEvent) -> dict[str, Any]:
    """The event as a JSON-ready dict in the same shape ``parse_lines`` reads."""
    out: dict[str, Any] = {}
    for name in PersonalDataEvent.__dataclass_fields__:
        value = getattr(event, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Party):
            value = {"name": value.name, "role": value.role, "region": value.region}
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out
