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
    ],
)
def test_sensitivity_flags(key: str, pipl: bool, gdpr: bool, cpra: bool) -> None:
    """Categories carry the PIPL Art. 28, GDPR Art. 9 and CPRA sensitivity the law gives them."""
    c = default_taxonomy().categories[key]
    assert (c.pipl_sensitive, c.gdpr_special, c.cpra_sensitive) == (pipl, gdpr, cpra)


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
