"""The taxonomy: data categories, purposes, roles, regions and transfer mechanisms, read from TOML.

Our files live in ``lineage/data/``. A user extends or overrides them without code changes by pointing
``LINEAGE_TAXONOMY_DIR`` (``Settings.taxonomy_dir``) at a folder of TOML files with the same tables
(``[categories."user.x"]``, ``[regions.XX]`` ...): their keys are added, and replace ours on a clash.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from lineage.errors import ConfigurationError, UnknownValueError

__all__ = ["Category", "Mechanism", "Region", "Role", "Taxonomy", "default_taxonomy"]

_DATA_DIR = Path(__file__).parent / "data"
_TABLES = ("categories", "purposes", "roles", "regions", "mechanisms")
#: our TOML files parsed, under a digest of their bytes: JSON reads them in ~1 ms where tomllib took
#: ~30 of every ``lineage`` command's start. Used only while the digest matches the files (else they
#: are parsed); ``write_compiled`` makes it again, and a test checks it is current
_COMPILED = _DATA_DIR / "compiled.json"
ANY_REGIME = "*"
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Category:
    """A data category and its sensitivity under each regime."""

    key: str
    description: str
    pipl_sensitive: bool
    gdpr_special: bool
    cpra_sensitive: bool
    ca_breach_element: bool

    @property
    def sensitive(self) -> bool:
        """Whether any regime treats the category as sensitive."""
        return self.pipl_sensitive or self.gdpr_special or self.cpra_sensitive


@dataclass(frozen=True, slots=True, kw_only=True)
class Role:
    """A holder or recipient role; ``external`` is false only for our own systems."""

    key: str
    description: str
    external: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Region:
    """An ISO 3166 region; data leaving its ``zone`` is a cross-border transfer."""

    key: str
    name: str
    zone: str
    regimes: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Mechanism:
    """A cross-border transfer mechanism and the regimes that recognise it."""

    key: str
    description: str
    regimes: tuple[str, ...]
    citation: str

    def recognised_by(self, regimes: Iterable[str]) -> bool:
        """Whether this mechanism is valid under any of ``regimes``."""
        return ANY_REGIME in self.regimes or any(r in self.regimes for r in regimes)


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """Every closed-but-extensible vocabulary an event is checked against."""

    categories: Mapping[str, Category]
    purposes: Mapping[str, str]
    roles: Mapping[str, Role]
    regions: Mapping[str, Region]
    mechanisms: Mapping[str, Mechanism]

    @classmethod
    def load(cls, extra_dirs: Iterable[Path] = ()) -> Taxonomy:
        """Read our TOML files, then each extra folder's, later keys replacing earlier ones."""
        tables = _packaged()
        for folder in extra_dirs:
            if not folder.is_dir():
                raise ConfigurationError("taxonomy_dir", f"{str(folder)!r} is not a directory")
            for path in sorted(folder.glob("*.toml")):
                _merge(tables, path)
        try:
            return cls(
                categories={k: Category(key=k, **v) for k, v in tables["categories"].items()},
                purposes={k: str(v["description"]) for k, v in tables["purposes"].items()},
                roles={k: Role(key=k, **v) for k, v in tables["roles"].items()},
                regions={
                    k: Region(key=k, name=v["name"], zone=v["zone"], regimes=tuple(v["regimes"]))
                    for k, v in tables["regions"].items()
                },
                mechanisms={
                    k: Mechanism(
                        key=k,
                        description=v["description"],
                        regimes=tuple(v["regimes"]),
                        citation=v["citation"],
                    )
                    for k, v in tables["mechanisms"].items()
                },
            )
        except (KeyError, TypeError) as exc:
            raise ConfigurationError("taxonomy_dir", f"an entry lacks or misnames a field: {exc}") from exc

    def pipl_sensitive_keys(self) -> list[str]:
        """The keys of the categories sensitive under PIPL Art. 28, sorted (PIPL's own rules count only these)."""
        return sorted(k for k, c in self.categories.items() if c.pipl_sensitive)

    def category(self, field: str, key: str) -> Category:
        """Return the category ``key`` or raise naming ``field`` with close matches."""
        return _lookup(self.categories, field, key, "data category")

    def purpose(self, field: str, key: str) -> str:
        """Return the purpose's description or raise naming ``field``."""
        return _lookup(self.purposes, field, key, "purpose")

    def role(self, field: str, key: str) -> Role:
        """Return the role ``key`` or raise naming ``field``."""
        return _lookup(self.roles, field, key, "role")

    def region(self, field: str, key: str) -> Region:
        """Return the region ``key`` (an ISO 3166 code) or raise naming ``field``."""
        return _lookup(self.regions, field, key, "region (ISO 3166 code)")

    def mechanism(self, field: str, key: str) -> Mechanism:
        """Return the mechanism ``key`` or raise naming ``field``."""
        return _lookup(self.mechanisms, field, key, "transfer mechanism")


_Tables = dict[str, dict[str, dict[str, Any]]]


def _packaged() -> _Tables:
    """Our own TOML files' tables, merged in file order: from ``_COMPILED`` while it is current."""
    paths = sorted(_DATA_DIR.glob("*.toml"))
    digest = _digest(paths)
    try:
        compiled = json.loads(_COMPILED.read_bytes())
    except (OSError, ValueError, RecursionError):
        compiled = None
    if isinstance(compiled, dict) and compiled.get("digest") == digest:
        tables = compiled.get("tables")
        if isinstance(tables, dict) and set(tables) <= set(_TABLES) and all(
            isinstance(entries, dict) and all(isinstance(entry, dict) for entry in entries.values())
            for entries in tables.values()
        ):
            return {t: dict(tables.get(t, {})) for t in _TABLES}
    tables = {t: {} for t in _TABLES}  # none, stale or of another shape: the files say it
    for path in paths:
        _merge(tables, path)
    return tables


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        data = path.read_bytes()
        h.update(f"{path.name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def write_compiled() -> Path:
    """Write ``_COMPILED`` from our TOML files (after changing them; tests/contract checks it is current)."""
    paths = sorted(_DATA_DIR.glob("*.toml"))
    tables: _Tables = {t: {} for t in _TABLES}
    for path in paths:
        _merge(tables, path)
    # in the files' order, not sorted: the taxonomy's mappings keep it (a fingerprint of their repr too)
    _COMPILED.write_text(json.dumps({"digest": _digest(paths), "tables": tables}, indent=0) + "\n")
    return _COMPILED


def _merge(tables: _Tables, path: Path) -> None:
    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError("taxonomy_dir", f"{path.name} is not valid TOML: {exc}") from exc
    for table, entries in doc.items():
        if table not in tables:
            raise ConfigurationError(
                "taxonomy_dir", f"{path.name} has table [{table}]; expected one of {', '.join(_TABLES)}"
            )
        tables[table].update(entries)


def _lookup(table: Mapping[str, _T], field: str, key: str, kind: str) -> _T:
    try:
        return table[key]
    except (KeyError, TypeError):
        raise UnknownValueError(field, key, kind, suggest(key, table)) from None


def suggest(value: object, choices: Iterable[str], n: int = 3) -> list[str]:
    """The closest valid keys to ``value``: nearest in the tree first, then most alike.

    Likeness is judged on the whole key and on its last dotted segment; among the keys alike enough,
    those sharing more leading segments with ``value`` come first. Without that, an unknown
    ``user.contact.address.city`` was offered ``user.demographic.race_ethnicity`` ("city" is in
    "ethnicity") before its own parent ``user.contact.address``.
    """
    if not isinstance(value, str) or not value:
        return []
    segments = value.split(".")
    last = segments[-1].lower()
    scored = []
    for key in choices:
        key_last = key.rsplit(".", 1)[-1].lower()
        score = max(
            difflib.SequenceMatcher(None, value, key).ratio(),
            difflib.SequenceMatcher(None, last, key_last).ratio(),
            0.9 if last and last in key_last else 0.0,
        )
        if score >= 0.6:
            scored.append((-_shared_segments(segments, key.split(".")), -score, len(key), key))
    return [key for *_, key in sorted(scored)[:n]]


def _shared_segments(a: list[str], b: list[str]) -> int:
    """How many leading dotted segments two keys share (their common ancestor's depth)."""
    shared = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        shared += 1
    return shared


@cache
def default_taxonomy() -> Taxonomy:
    """Our own taxonomy, loaded once per process."""
    return Taxonomy.load()
