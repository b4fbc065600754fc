"""The files lineage ships beside its code: Avro schemas, SQL queries, the seed organisations' policies.

They live in the repository's top-level ``schemas/``, ``queries/`` and ``policies/`` folders, so a user
can read the contract, ``.read`` a query in the DuckDB CLI or copy a policy without opening the package.
A wheel carries them as package data under ``lineage/shipped/`` (see ``pyproject.toml``); an editable
install reads the checkout's folders. This module is the one place that knows both layouts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

__all__ = ["Shipped", "shipped_dir"]

Shipped = Literal["schemas", "queries", "policies"]

_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(kind: Shipped) -> Path:
    """The folder of shipped ``kind`` files: packaged in a wheel, else the checkout's top-level folder."""
    packaged = _PACKAGE / "shipped" / kind
    return packaged if packaged.is_dir() else _PACKAGE.parent / kind
