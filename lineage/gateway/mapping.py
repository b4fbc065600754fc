"""The OpenLineage dataset mapping: which holder each dataset is at, and what it holds.

A pipeline's run event names datasets (``namespace`` + ``name``), not holders. This TOML file,
written by whoever knows the pipelines, says where each dataset is held and on what terms data
goes to it (``lineage gateway serve --openlineage FILE``)::

    [defaults]
    purpose = "essential.service"                  # a flow's purpose when its dataset names none

    [[datasets]]
    namespace = "postgres://shop-db:5432"          # as the run event names it
    name = "shop.public.customers"
    holder = { name = "shop", role = "internal", region = "CN" }
    categories = ["user.contact.email"]            # optional: held besides what its tags say

    [[datasets]]
    namespace = "s3://mailer-sg"
    name = "exports/customers"
    holder = { name = "mailer", role = "processor", region = "SG" }
    purpose = "marketing.communications.email"     # why data is given to this holder
    mechanism = "pipl.standard_contract"           # the transfer mechanism when it is in another zone

Roles, regions, categories, purposes and mechanisms are checked against the taxonomy when the
gateway starts; every failure is one line naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lineage.contract.events import Party
from lineage.contract.taxonomy import Taxonomy, suggest
from lineage.contract.tomlfile import kind, read_toml
from lineage.errors import ConfigurationError

__all__ = ["Dataset", "DatasetMap", "load_mapping"]

_SETTING = "openlineage mapping"
_TOP = {"defaults": False, "datasets": True}
_DEFAULTS = {"purpose": False}
_DATASET = {"namespace": True, "name": True, "holder": True, "categories": False, "purpose": False,
            "mechanism": False}  # fmt: skip
_PARTY = {"name": True, "role": True, "region": True}


@dataclass(frozen=True, slots=True)
class Dataset:
    """One dataset: where it is held, what it holds beyond its tags, and the terms of data going to it."""

    namespace: str
    name: str
    holder: Party
    categories: tuple[str, ...]
    purpose: str
    mechanism: str | None


@dataclass(frozen=True, slots=True)
class DatasetMap:
    """Every mapped dataset by (namespace, name)."""

    datasets: dict[tuple[str, str], Dataset]

    def find(self, namespace: str, name: str) -> Dataset | None:
        """The mapped dataset, or None when the mapping does not know it."""
        return self.datasets.get((namespace, name))


def load_mapping(path: Path, taxonomy: Taxonomy) -> DatasetMap:
    """Read and check a mapping file; ``ConfigurationError`` (or an unknown taxonomy key) names file and key."""
    where = path.name
    doc = read_toml(path, _SETTING)
    check = _Check(where)
    check.keys("", doc, _TOP)
    defaults = doc.get("defaults", {})
    check.table("defaults", defaults)
    check.keys("defaults.", defaults, _DEFAULTS)
    entries = doc["datasets"]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries) or not entries:
        raise check.fail("datasets", f"must be one or more tables ([[datasets]]), got {kind(entries)}")
    found: dict[tuple[str, str], Dataset] = {}
    for n, entry in enumerate(entries, start=1):
        at = f"datasets[{n}]"
        dataset = _dataset(check, at, entry, defaults.get("purpose"), taxonomy)
        key = (dataset.namespace, dataset.name)
        if key in found:
            raise check.fail(at, "names a dataset (namespace and name) an earlier entry already maps")
        found[key] = dataset
    return DatasetMap(found)


def _dataset(check: _Check, at: str, entry: dict[str, Any], default: object, taxonomy: Taxonomy) -> Dataset:
    check.keys(at + ".", entry, _DATASET)
    for key in ("namespace", "name"):
        check.text(f"{at}.{key}", entry[key])
    holder = entry["holder"]
    check.table(f"{at}.holder", holder)
    check.keys(f"{at}.holder.", holder, _PARTY)
    for key in _PARTY:
        check.text(f"{at}.holder.{key}", holder[key])
    where = f"{check.where}: {at}"
    taxonomy.role(f"{where}.holder.role", holder["role"])
    taxonomy.region(f"{where}.holder.region", holder["region"])
    categories = entry.get("categories", [])
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise check.fail(f"{at}.categories", f"must be a list of category keys, got {kind(categories)}")
    for category in categories:
        taxonomy.category(f"{where}.categories", category)
    purpose = entry.get("purpose", default)
    if purpose is None:
        raise check.fail(f"{at}.purpose", "is missing, and [defaults] names no purpose: why data goes to it")
    check.text(f"{at}.purpose", purpose)
    taxonomy.purpose(f"{where}.purpose", purpose)
    mechanism = entry.get("mechanism")
    if mechanism is not None:
        check.text(f"{at}.mechanism", mechanism)
        taxonomy.mechanism(f"{where}.mechanism", mechanism)
    return Dataset(entry["namespace"], entry["name"], Party(**holder), tuple(categories), purpose, mechanism)


class _Check:
    """The file's shape: known keys, required keys, types; a failure names the file and the key."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, problem: str) -> ConfigurationError:
        return ConfigurationError(_SETTING, f"{self.where}: {key}: {problem}")

    def keys(self, prefix: str, table: dict[str, Any], keys: dict[str, bool]) -> None:
        for key in table:
            if key not in keys:
                close = suggest(key, keys)
                hint = "; did you mean " + " or ".join(repr(prefix + c) for c in close) + "?" if close else ""
                raise self.fail(prefix + key, f"is not a mapping key (expected {', '.join(keys)}){hint}")
        for key, required in keys.items():
            if required and key not in table:
                raise self.fail(prefix + key, "is missing")

    def table(self, key: str, value: object) -> None:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table, got {kind(value)}")

    def text(self, key: str, value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {kind(value)}")
