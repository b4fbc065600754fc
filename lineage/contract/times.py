"""Times typed by people: one parser for every door, with each door's rule for a time without an offset.

The CLI refuses a bare time (``--from 2026-05-01T08:00`` in a shell is ambiguous: the analyst's zone
or UTC?), so each option names its offset. The console's forms are ``datetime-local`` inputs,
labelled UTC, and send no offset: there a bare time is UTC. Either way the result is timezone-aware
and inside the contract's years (1900 to 9999 in UTC), so no later step overflows turning it into
UTC, and a bad one is one line naming the field, the text cut short.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum

from lineage.errors import InvalidEventError

__all__ = ["Bare", "parse_time"]

_SHOWN = 40  # characters of a refused time put back in its message: enough to see the mistake


class Bare(Enum):
    """What a time without an offset means to the caller."""

    #: refused: the CLI, where the reader's zone is unknown
    REFUSED = "refused"
    #: read as UTC: the console's forms, labelled UTC
    UTC = "utc"


def parse_time(field: str, text: str | None, *, bare: Bare) -> datetime | None:
    """The ISO 8601 time ``text`` given as ``field`` (None when not given), read by the ``bare`` rule.

    Raises:
        InvalidEventError: not ISO 8601, without an offset under ``Bare.REFUSED``, or outside the
            years 1900 to 9999 in UTC; the message names ``field``.

    """
    if text is None:
        return None
    shown = text[:_SHOWN]
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidEventError(field, shown, "is not an ISO 8601 time (e.g. 2026-05-01T08:00:00+08:00)") from None
    if value.tzinfo is None:
        if bare is Bare.REFUSED:
            raise InvalidEventError(field, shown, "needs a UTC offset (e.g. +08:00 or Z)")
        value = value.replace(tzinfo=UTC)
    # the contract's range (events are refused outside it); year 1 or 9999 with an offset would
    # overflow when turned into UTC deep inside a query instead of here
    try:
        year = value.astimezone(UTC).year
    except OverflowError:
        year = 0
    if not 1900 <= year <= 9999:
        raise InvalidEventError(field, shown, "must be between the years 1900 and 9999 (UTC)")
    return value
