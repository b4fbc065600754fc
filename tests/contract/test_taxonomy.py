"""The taxonomy files: what they flag, and how a user extends them without code changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from lineage import ConfigurationError, Emitter, Settings, default_taxonomy
from lineage.testing import MemorySink


def test_mainland_hong_kong_macao_taiwan_are_distinct_zones() -> None:
    """CN, HK, MO and TW are four transfer zones; EEA members share one; US states share the US zone."""
    regions = default_taxonomy().regions
    assert len({regions[c].zone for c in ("CN", "HK", "MO", "TW")}) == 4
    assert regions["DE"].zone == regions["FR"].zone == regions["NO"].zone == "EEA"
    assert regions["US-CA"].zone == regions["US"].zone == "US"
    assert "PIPL" in regions["CN"].regimes and "CCPA" in regions["US-CA"].regimes


@pytest.mark.parametrize(
    ("key", "pipl", "gdpr", "cpra"),
    [
        ("user.biometrics", True, True, True),
        ("user.childrens", True, False, False),
        ("user.government_id.national_identification_number", True, False, True),
        ("user.location.precise", True, False, True),
        ("user.financial.bank_account", True, False, True),
        ("user.contact.email", False, False, False),
        ("user.health", True, True, True),
        ("user.demographic.political_opinion", False, True, False),
        ("user.demographic.citizenship_or_immigration_status", False, False, True),
        ("user.criminal_history", True, False, False),
    ],
)
def test_sensitivity_flags(key: str, pipl: bool, gdpr: bool, cpra: bool) -> None:
    """Categories carry the PIPL Art. 28, GDPR Art. 9 and CPRA sensitivity the law gives them."""
    c = default_taxonomy().categories[key]
    assert (c.pipl_sensitive, c.gdpr_special, c.cpra_sensitive) == (pipl, gdpr, cpra)


def test_pipl_sensitive_keys_follow_the_pipl_flag_alone() -> None:
    """PIPL's sensitive keys are the PIPL-flagged categories, sorted; GDPR- or CPRA-only ones are not among them."""
    keys = default_taxonomy().pipl_sensitive_keys()
    assert keys == sorted(keys) and {"user.criminal_history", "user.childrens", "user.health"} <= set(keys)
    assert not {"user.demographic.political_opinion", "user.demographic.citizenship_or_immigration_status"} & set(keys)


def test_pipl_mechanisms_are_recognised_by_pipl_only() -> None:
    """A PIPL standard contract is recognised by PIPL, a GDPR SCC is not; the GBA contract by PIPL and PDPO."""
    m = default_taxonomy().mechanisms
    assert m["pipl.standard_contract"].recognised_by(["PIPL"])
    assert not m["gdpr.scc"].recognised_by(["PIPL"])
    assert m["gba.standard_contract"].recognised_by(["PDPO-HK"])
    assert m["contract.dpa"].recognised_by(["ANYTHING"])


def test_user_folder_adds_and_overrides_entries(tmp_path: Path) -> None:
    """A TOML file in LINEAGE_TAXONOMY_DIR adds a category and a role and overrides a region's name."""
    (tmp_path / "ours.toml").write_text(
        """
[categories."user.loyalty.points"]
description = "Loyalty points balance."
pipl_sensitive = false
gdpr_special = false
cpra_sensitive = false
ca_breach_element = false

[roles.franchisee]
description = "A franchise store."
external = true

[regions.HK]
name = "Hong Kong (ours)"
zone = "HK"
regimes = ["PDPO-HK"]
""",
        encoding="utf-8",
    )
    sink = MemorySink()
    emitter = Emitter(system="shop", region="HK", settings=Settings(taxonomy_dir=tmp_path), sink=sink)
    emitter.collected("u1", ["user.loyalty.points"], purpose="essential.service", legal_basis="CONTRACT")
    assert len(sink.messages) == 1
    assert emitter.taxonomy.regions["HK"].name == "Hong Kong (ours)" and "franchisee" in emitter.taxonomy.roles
    assert "user.contact.email" in emitter.taxonomy.categories


def test_bad_taxonomy_files_name_the_file(tmp_path: Path) -> None:
    """Invalid TOML, an unknown table, or a missing field raise ConfigurationError naming what is wrong."""
    from lineage.contract.taxonomy import Taxonomy

    (tmp_path / "broken.toml").write_text("[categories\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="broken.toml is not valid TOML"):
        Taxonomy.load([tmp_path])
    (tmp_path / "broken.toml").write_text("[colours.red]\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"broken.toml has table \[colours\]"):
        Taxonomy.load([tmp_path])
    (tmp_path / "broken.toml").write_text('[roles.x]\ndescription = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match="lacks or misnames a field"):
        Taxonomy.load([tmp_path])
    with pytest.raises(ConfigurationError, match="is not a directory"):
        Taxonomy.load([tmp_path / "missing"])


def test_every_category_and_use_of_the_released_fideslang_taxonomy_is_accepted() -> None:
    """The released fideslang default taxonomy (PyPI): every data category and data use is accepted, flagged."""
    import warnings

    with warnings.catch_warnings():  # fideslang's pydantic models may warn on import; not ours to fix
        warnings.simplefilter("ignore")
        from fideslang.default_taxonomy import DEFAULT_TAXONOMY

    taxonomy = default_taxonomy()
    categories = [c.fides_key for c in DEFAULT_TAXONOMY.data_category]
    uses = [u.fides_key for u in DEFAULT_TAXONOMY.data_use]
    assert len(categories) >= 85 and len(uses) >= 56
    assert [k for k in categories if k not in taxonomy.categories] == []
    assert [k for k in uses if k not in taxonomy.purposes] == []
    for key in categories:
        c = taxonomy.categories[key]
        flags = (c.pipl_sensitive, c.gdpr_special, c.cpra_sensitive, c.ca_breach_element)
        assert all(isinstance(f, bool) for f in flags), key
    sink = MemorySink()
    emitter = Emitter(system="shop", region="HK", settings=Settings(), sink=sink)
    emitter.collected("u1", categories, purpose=uses[-1], legal_basis="CONTRACT")  # as a Fides user annotates
    for use in uses:
        emitter.collected("u1", ["user.contact.email"], purpose=use, legal_basis="CONTRACT")
    assert len(sink.messages) == 1 + len(uses)


def test_suggestions_prefer_the_nearest_key_in_the_tree() -> None:
    """An unknown key is answered first with keys under the same parent, not a look-alike from another branch."""
    from lineage.contract.taxonomy import suggest

    keys = [k for k in default_taxonomy().categories if not k.startswith("user.contact.address.")]
    first = suggest("user.contact.address.city", keys)[0]
    assert first == "user.contact.address", suggest("user.contact.address.city", keys)
    assert suggest("user.location.precice", default_taxonomy().categories)[0] == "user.location.precise"
    assert suggest("user.contcat.email", default_taxonomy().categories)[0] == "user.contact.email"
    assert suggest("personalize.profilling", default_taxonomy().purposes)[0].startswith("personalize.")


def test_the_compiled_taxonomy_is_current_and_equal_to_the_toml_files() -> None:
    """``compiled.json`` was made from today's TOML files (else run ``write_compiled``) and holds what they say."""
    import json

    from lineage.contract import taxonomy

    paths = sorted(taxonomy._DATA_DIR.glob("*.toml"))
    compiled = json.loads(taxonomy._COMPILED.read_text())
    assert compiled["digest"] == taxonomy._digest(paths), (
        "lineage/contract/data/compiled.json is stale: run "
        "python -c 'from lineage.contract.taxonomy import write_compiled; write_compiled()'"
    )
    parsed: dict[str, dict[str, dict[str, object]]] = {t: {} for t in taxonomy._TABLES}
    for path in paths:
        taxonomy._merge(parsed, path)
    assert compiled["tables"] == parsed and taxonomy._packaged() == parsed
    for table, entries in taxonomy._packaged().items():  # in the files' order too: a fingerprint hashes the repr
        assert list(entries) == list(parsed[table]), table


@pytest.mark.parametrize("tables", [{"roles": 5}, {"roles": {"internal": ["x"]}}, {"elsewhere": {}}, []])
def test_a_compiled_taxonomy_of_another_shape_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tables: object
) -> None:
    """``compiled.json`` under today's digest but not of the shape written: the TOML files are read instead."""
    import json

    from lineage.contract import taxonomy

    digest = taxonomy._digest(sorted(taxonomy._DATA_DIR.glob("*.toml")))
    broken = tmp_path / "compiled.json"
    broken.write_text(json.dumps({"digest": digest, "tables": tables}))
    monkeypatch.setattr(taxonomy, "_COMPILED", broken)
    assert taxonomy._packaged()["roles"]["internal"]["external"] is False


def test_a_stale_compiled_taxonomy_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TOML files changed since ``compiled.json`` was made: their own words, not the compiled ones."""
    from lineage.contract import taxonomy

    data = tmp_path / "data"
    data.mkdir()
    for path in taxonomy._DATA_DIR.glob("*.toml"):
        (data / path.name).write_bytes(path.read_bytes())
    (data / "roles.toml").write_text((data / "roles.toml").read_text() + '\n[roles.new_role]\ndescription = "x"\n')
    monkeypatch.setattr(taxonomy, "_DATA_DIR", data)
    monkeypatch.setattr(taxonomy, "_COMPILED", taxonomy._COMPILED)  # today's, made from the files unchanged
    assert "new_role" in taxonomy._packaged()["roles"]
