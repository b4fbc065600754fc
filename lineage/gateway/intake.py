"""A request body into validated, encoded events, by the same reader as ``lineage emit`` (``lineage.sdk.jsonlines``).

A body is one event object, a JSON array of them, or ``{"events": [...]}``. Every event is read
and validated before any is sent: one bad event refuses the whole request, and the answer names
each bad one by its index and field (``events[3]: categories: ...``), never by its values that
identify a person. The same event twice is a retry (sent once); two different events with one
``event_id`` are refused, since the relay and the store keep one event per id. An event whose
``system`` the token may not emit as is refused with 403.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from lineage.contract.records import Record
from lineage.errors import LineageError, shown
from lineage.sdk.jsonlines import has_no_surrogates, read_object
from lineage.sdk.prepared import Prepared

__all__ = ["RequestError", "load_body", "read_events"]

_MAX_ERRORS = 20  # refused events listed in one answer, and read: a batch of 5,000 bad ones needs no 5,000 lines


class RequestError(LineageError):
    """A request refused: the HTTP status and one line per problem."""

    def __init__(self, status: int, errors: list[str]) -> None:
        """Record the status and the problems."""
        self.status = status
        self.errors = errors
        super().__init__(errors[0] if len(errors) == 1 else f"{errors[0]} (and {len(errors) - 1} more)")


@dataclass(frozen=True, slots=True)
class _Shape:
    items: list[object]
    batch: bool


def read_events(body: bytes, *, prepare: Callable[[Record], Prepared], systems: frozenset[str]) -> list[Prepared]:
    """The body's events, validated and encoded by ``prepare``, all emitted as one of ``systems``.

    Else ``RequestError`` (400 or 403).
    """
    shape = _shape(load_body(body))
    utf8_known = has_no_surrogates(body)
    events: list[Prepared] = []
    errors: list[str] = []
    foreign: list[str] = []
    first: dict[str, tuple[int, object]] = {}  # event id -> where it was first, and its JSON as sent
    for i, obj in enumerate(shape.items):
        if len(errors) >= _MAX_ERRORS:  # a bad event costs ms (suggestions): 5,000 of them were 14 s of CPU
            unread = len(shape.items) - i
            errors.append(f"... and {unread} more events not checked: reading stops at {_MAX_ERRORS} refused ones")
            break
        where = f"events[{i}]: " if shape.batch else ""
        item = read_object(obj, system=None, region=None, finish=prepare, utf8_known=utf8_known)
        if isinstance(item, Prepared):
            j, earlier = first.setdefault(item.event_id, (i, obj))
            if earlier != obj:  # one of the two would be dropped as a retry of the other: refuse, say which
                errors.append(f"{where}event_id: the same as events[{j}]'s, for a different event; give each its own")
            elif item.system in systems:
                events.append(item)
            else:
                foreign.append(f"{where}system={shown(item.system)}: this token may not emit as that system")
        else:
            errors.append(where + item.reason)
    if errors:
        raise RequestError(400, errors)
    if foreign:
        raise RequestError(403, _cut(foreign))
    return events


def load_body(body: bytes) -> object:
    """The body as JSON, or ``RequestError`` (400) saying why it is not."""
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise RequestError(400, [f"body: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]) from None
    except UnicodeDecodeError:
        raise RequestError(400, ["body: not valid UTF-8 text"]) from None
    except RecursionError:
        raise RequestError(400, ["body: not valid JSON here: nested too deeply"]) from None
    except ValueError:  # Python refuses integers of more than 4300 digits (a denial-of-service guard)
        raise RequestError(400, ["body: not valid JSON here: a number has too many digits"]) from None


def _shape(value: object) -> _Shape:
    if isinstance(value, dict) and "events" in value:
        if set(value) != {"events"}:
            raise RequestError(400, ['body: a batch object holds only "events" (put other fields in each event)'])
        value = value["events"]
        if not isinstance(value, list):
            raise RequestError(400, ["events: must be a JSON array of event objects"])
    if isinstance(value, list):
        if not value:
            raise RequestError(400, ["body: the batch holds no event"])
        return _Shape(value, batch=True)
    if isinstance(value, dict):
        return _Shape([value], batch=False)
    raise RequestError(400, ['body: expected an event object, an array of them, or {"events": [...]}'])


def _cut(errors: list[str]) -> list[str]:
    if len(errors) <= _MAX_ERRORS:
        return errors
    return errors[:_MAX_ERRORS] + [f"... and {len(errors) - _MAX_ERRORS} more refused events"]
