"""The registers last computed, kept in the console database for every worker and the next start.

They take ~15-20 s at 1M subjects. Kept in one process's memory only, each worker of ``lineage serve
--workers`` and each restart computed them again before its first registers view could show
anything. Here the last ones computed by any process are kept under what they were computed with
(the store, this format, lineage's version, the taxonomy and the policies), with the read they came from; the
console shows them by the rule it applies to those in memory (``Service.registers``: only while the
store has only gained events since that read and no forget began, stamped with it). A forget deletes
them (``lineage.console.erasure``, for the console's and the command line's).

What is kept is what the registers page shows: counts per holder, category and route, and the event
ids the RoPA flags and policy violations name; no identifier of a person.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from lineage.console.db import ConsoleDB
from lineage.contract.policy import Policy
from lineage.contract.taxonomy import Taxonomy

__all__ = ["KeptRegisters", "claim", "decode", "drop", "encode", "fingerprint", "load", "release", "save"]

#: bump when the registers' shape changes: kept ones of another shape are never shown
_FORMAT = 1
#: a claim's key is the registers' own with this after it (never a fingerprint: those are hex digits)
_CLAIM = ":computing"


@dataclass(frozen=True, slots=True)
class KeptRegisters:
    """Registers as kept: the read they came from, when (wall clock), and them.

    ``read``: the events and holdings snapshots, and the erasure certificates' version (``Store.erasures_version``).
    """

    read: tuple[int | None, int | None, str | None]
    computed: float
    found: dict[str, Any]


def fingerprint(store: str, taxonomy: Taxonomy, policies: list[Policy]) -> str:
    """A key for what the registers depend on besides the store's state.

    Which store (``store``: its description), this format, lineage's version, the taxonomy and the policies.

    Their reprs are built from files read in a fixed order (no set), so equal inputs give equal keys
    in every process; unequal ones only miss the kept registers, never show another console's.
    """
    import lineage  # the version is read from the package's metadata on first use

    text = repr((_FORMAT, lineage.__version__, store, taxonomy, policies))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load(db: ConsoleDB, key: str) -> KeptRegisters | None:
    """The registers kept under ``key``, or None (none kept, or kept in a form this version cannot read)."""
    with db.tx() as tx:
        row = tx.one("SELECT snapshot, holdings_snapshot, erasures, computed, body FROM console_registers "
                     "WHERE key = :k", {"k": key})  # fmt: skip
    if row is None:
        return None
    try:
        found = decode(row["body"])
    except (ValueError, TypeError, KeyError):
        return None
    read = (_snapshot(row["snapshot"]), _snapshot(row["holdings_snapshot"]), row["erasures"])
    return KeptRegisters(read, float(row["computed"]), found)


def save(db: ConsoleDB, key: str, kept: KeptRegisters) -> None:
    """Keep ``kept`` under ``key``, unless registers computed later are kept already (another worker's)."""
    body = encode(kept.found)
    params = {"k": key, "s": kept.read[0], "h": kept.read[1], "e": kept.read[2], "c": kept.computed, "b": body}
    with db.tx() as tx:
        if not tx.run("UPDATE console_registers SET snapshot = :s, holdings_snapshot = :h, erasures = :e, "
                      "computed = :c, body = :b WHERE key = :k AND computed < :c", params):  # fmt: skip
            tx.run("INSERT INTO console_registers (key, snapshot, holdings_snapshot, erasures, computed, body) "
                   "SELECT :k, :s, :h, :e, :c, :b WHERE NOT EXISTS (SELECT 1 FROM console_registers WHERE key = :k)",
                   params)  # fmt: skip


def claim(db: ConsoleDB, key: str, stale_s: float, claimant: str) -> bool:
    """Claim the computation of the registers under ``key`` for ``claimant``: whether no other holds it.

    A claim older than ``stale_s`` (its process killed midway, say) is taken over. It is a row of the
    same table with no body (``claimant`` in its ``erasures``), so a forget's ``drop`` removes it too.
    """
    now = time.time()
    params = {"k": key + _CLAIM, "now": now, "stale": now - stale_s, "who": claimant}
    with db.tx() as tx:
        if tx.run("INSERT INTO console_registers (key, erasures, computed, body) VALUES (:k, :who, :now, '') "
                  "ON CONFLICT (key) DO NOTHING", params):  # fmt: skip
            return True
        return bool(tx.run("UPDATE console_registers SET computed = :now, erasures = :who "
                           "WHERE key = :k AND computed < :stale", params))  # fmt: skip


def release(db: ConsoleDB, key: str, claimant: str) -> None:
    """End ``claimant``'s claim on the registers under ``key`` (``claim``), if it still holds it."""
    with db.tx() as tx:
        tx.run("DELETE FROM console_registers WHERE key = :k AND erasures = :who", {"k": key + _CLAIM, "who": claimant})


def drop(db: ConsoleDB, *, claims: bool = True) -> None:
    """Delete every kept registers (after a forget: they may count the person), and the claims unless not ``claims``."""
    with db.tx() as tx:
        tx.run("DELETE FROM console_registers" if claims else "DELETE FROM console_registers WHERE body <> ''")


def encode(found: dict[str, Any]) -> str:
    """The registers as JSON text that ``decode`` turns back into equal values (tuples and times included).

    A value of another type raises ``TypeError``: such registers are not kept.
    """
    return json.dumps(_tagged(found), separators=(",", ":"))


def decode(text: str) -> dict[str, Any]:
    """The registers ``encode`` wrote."""
    found = json.loads(text, object_hook=_untagged)
    if not isinstance(found, dict):
        raise ValueError("kept registers: not an object")
    return found


def _tagged(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float):  # bool is an int
        return value
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("a key that is not text")
        items = {k: _tagged(v) for k, v in value.items()}
        # a key like a tag's (an organisation's name, say) is kept as pairs, never read as a tag
        return {"$dict": list(items.items())} if any(k.startswith("$") for k in items) else items
    if isinstance(value, list):
        return [_tagged(v) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [_tagged(v) for v in value]}
    if isinstance(value, datetime):
        return {"$time": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    raise TypeError(f"a value of type {type(value).__name__}")


def _untagged(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        (tag, value), = obj.items()
        if tag == "$tuple":
            return tuple(value)
        if tag == "$time":
            return datetime.fromisoformat(value)
        if tag == "$date":
            return date.fromisoformat(value)
        if tag == "$dict":
            return {k: v for k, v in value}
    return obj


def _snapshot(value: Any) -> int | None:
    return None if value is None else int(value)
