"""The domain rules every part of lineage applies, each defined once here.

- **Coverage**: a category key covers itself and every key below it (``user.contact`` covers
  ``user.contact.email``). SQL: the ``covers`` macro in ``queries/_macros.sql``.
- **Crossing a border**: data moves between two regions of different transfer zones (CN to HK is
  cross-border under PIPL; CN to CN is not). SQL: the ``crosses_border`` macro over the ``regions``
  table the store builds from the same taxonomy.
- **Sensitivity**: the regimes under which a category is sensitive, as flags.
- **Minors**: the age bands below an age limit.

The SQL forms are the same rules for the queries, and ``tests/contract/test_rules.py`` checks
that SQL and Python agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypedDict

from lineage.contract.taxonomy import Category, Taxonomy

__all__ = ["MINOR_BANDS", "Sensitivity", "covered", "covers", "crosses_border", "sensitivity"]

# age band -> the age it lies below: CHILD_UNDER_14 is under 14, MINOR under 18
MINOR_BANDS: dict[str, int] = {"CHILD_UNDER_14": 14, "MINOR": 18}


def covers(key: str, category: str) -> bool:
    """Whether the category ``key`` covers ``category``: it is the key itself or a key below it."""
    return category == key or category.startswith(key + ".")


def covered(category: str, keys: Iterable[str]) -> bool:
    """Whether any of ``keys`` covers ``category``."""
    return any(covers(k, category) for k in keys)


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
