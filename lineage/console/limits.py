"""How long each field a user types may be: checked before any look-up, and again before the audit keeps it.

The audit table is append-only, so whatever reaches it stays: a 5 MB identifier sent once would be
kept whole forever. Each limit is the longest real value can be, so nothing real is refused.
"""

from __future__ import annotations

from lineage.contract.validation import MAX_ID
from lineage.errors import InvalidEventError

__all__ = ["CASE_REFERENCE_CHARS", "IDENTIFIER_CHARS", "NAME_CHARS", "check_length"]

#: a person's identifier: the event contract's own limit, so no longer one can be in the store
IDENTIFIER_CHARS = MAX_ID
#: a case reference (a ticket or request id)
CASE_REFERENCE_CHARS = 64
#: an account name, and the actor or action an audit search names
NAME_CHARS = 64


def check_length(field: str, value: str | None, limit: int, *, personal: bool = False) -> None:
    """Refuse ``value`` longer than ``limit`` with one line naming ``field`` (never a person's identifier)."""
    if value is not None and len(value) > limit:
        raise InvalidEventError(field, value, f"must be at most {limit} characters", personal=personal or None)
