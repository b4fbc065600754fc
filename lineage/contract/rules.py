"""The domain rules every part of lineage applies, each defined once here.

- **Coverage**: a category key covers itself and every key below it (``user.contact`` covers
  ``user.contact.email``). SQL: the ``covers`` macro in ``queries/_macros.sql``.
- **Crossing a border**: data moves between two regions of different transfer zones (CN to HK is
  cross-border under PIPL; CN to CN is not). SQL: the ``crosses_border`` macro over the ``regions``
  table the store builds from the same taxonomy.
- **Sensitivity**: the regimes under which a category is sensitive, as flags.
- **Minors**: the age bands below an age limit.
- **Retention's end**: when data kept a number of days is due, clamped to ``RETENTION_NEVER``.
  SQL: the ``retention_end`` macro.

The SQL forms are the same rules for the queries, and ``tests/contract/test_rules.py`` checks
that SQL and Python agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from lineage.contract.taxonomy import Category, Taxonomy

__all__ = [
    "MINOR_BANDS",
    "RETENTION_NEVER",
    "Sensitivity",
    "covered",
    "covers",
    "crosses_border",
    "retention_end",
    "sensitivity",
]

# age band -> the age it lies below: CHILD_UNDER_14 is under 14, MINOR under 18
MINOR_BANDS: dict[str, int] = {"CHILD_UNDER_14": 14, "MINOR": 18}


def covers(key: str, category: str) -> bool:
    """Whether the category ``key`` covers ``category``: it is the key itself or a key below it."""
    return category == key or category.startswith(key + ".")


def covered(category: str, keys: Iterable[str]) -> bool:
    """Whether any of ``keys`` covers ``category``."""
    return any(covers(k, category) for k in keys)


#: The end of a retention period that reaches past the last time a timestamp can hold (the contract
#: accepts up to 2^31-1 days): ``retention_end`` clamps it to this instant, which means "never,
#: within any date we can show".
RETENTION_NEVER = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
_LAST_DAY = 2932896  # 9999-12-31, in days since 1970-01-01
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY = timedelta(days=1)


def retention_end(arrived_at: datetime, days: int | None) -> datetime | None:
    """When data that arrived at ``arrived_at`` and is kept ``days`` days is due (None: no period declared).

    Days of 86,400 s counted in UTC; a period ending past 9999-12-31 ends at ``RETENTION_NEVER``.
    """
    if days is None:
        return None
    if days >= _LAST_DAY - (arrived_at - _EPOCH) // _DAY:  # the day floored, as ``utc_day`` floors it
        return RETENTION_NEVER
    return arrived_at + timedelta(days=min(days, 100_000_000))


def crosses_border(taxonomy: Taxonomy, source: str | None, dest: str | None) -> bool:
    """Whether data moving from region ``source`` to region ``dest`` leaves its transfer zone.

    An unknown or missing region (a flow whose end is not located) is not a crossing we can show.
    """
    a, b = taxonomy.regions.get(source or ""), taxonomy.regions.get(dest or "")
    return a is not None and b is not None and a.zone != b.zone


class Sensitivity(TypedDict):
    """Under which regimes a category is sensitive."""

    pipl_sensitive: bool
    gdpr_special: bool
    cpra_sensitive: bool


def sensitivity(category: Category | None) -> Sensitivity:
    """A category's sensitivity flags; an unknown category (``None``) is flagged under none."""
    if category is None:
        return Sensitivity(pipl_sensitive=False, gdpr_special=False, cpra_sensitive=False)
    return Sensitivity(
        pipl_sensitive=category.pipl_sensitive,
        gdpr_special=category.gdpr_special,
        cpra_sensitive=category.cpra_sensitive,
    )
