"""The domain rules: each defined once in Python, and the SQL macros that state them agree with it."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import duckdb
from hypothesis import given
from hypothesis import strategies as st

from lineage import default_taxonomy
from lineage.contract.rules import covered, covers, crosses_border, sensitivity
from lineage.store import Store, StoreLocation

TAXONOMY = default_taxonomy()
KEYS = sorted(TAXONOMY.categories)
REGIONS = sorted(TAXONOMY.regions)


@functools.cache
def _empty_store() -> Path:
    """A store whose table exists but holds nothing, made once per run."""
    folder = Path(tempfile.mkdtemp(prefix="lineage-rules-"))
    StoreLocation.embedded(folder).load(create=True)
    return folder


def _macros() -> duckdb.DuckDBPyConnection:
    """A connection with the macros loaded, over an empty store (the macros need the events view)."""
    return Store(_empty_store()).connect()


def test_a_key_covers_itself_and_what_lies_below_it_only() -> None:
    """'user.contact' covers itself and 'user.contact.email', not 'user.contactless' nor 'user'."""
    assert covers("user.contact", "user.contact")
    assert covers("user.contact", "user.contact.email")
    assert not covers("user.contact", "user.contactless")
    assert not covers("user.contact", "user")


@given(st.sampled_from(KEYS), st.lists(st.sampled_from(KEYS), min_size=1, max_size=3))
def test_sql_covers_is_the_python_rule(category: str, keys: list[str]) -> None:
    """The ``covers`` macro gives the same answer as ``rules.covered`` for any category and keys."""
    with _macros() as con:
        row = con.execute("SELECT covers($c, $k)", {"c": category, "k": keys}).fetchone()
    assert row is not None and row[0] == covered(category, keys)


@given(st.sampled_from(REGIONS), st.sampled_from(REGIONS))
def test_sql_crosses_border_is_the_python_rule(source: str, dest: str) -> None:
    """The ``crosses_border`` macro over the taxonomy's zones agrees with ``rules.crosses_border``."""
    zones = {"a": TAXONOMY.regions[source].zone, "b": TAXONOMY.regions[dest].zone}
    with _macros() as con:
        row = con.execute("SELECT crosses_border($a, $b)", zones).fetchone()
    assert row is not None and row[0] == crosses_border(TAXONOMY, source, dest)


def test_mainland_to_hong_kong_crosses_and_an_unknown_region_does_not() -> None:
    """CN to HK is a cross-border flow under PIPL; a flow with an unlocated end shows no crossing."""
    assert crosses_border(TAXONOMY, "CN", "HK")
    assert not crosses_border(TAXONOMY, "CN", "CN")
    assert not crosses_border(TAXONOMY, "CN", None)


def test_sensitivity_of_an_unknown_category_flags_nothing() -> None:
    """A category the taxonomy lacks is flagged under no regime; a known one carries its own flags."""
    assert not any(sensitivity(None).values())
    biometric = TAXONOMY.categories["user.biometric"]
    assert sensitivity(biometric)["pipl_sensitive"] == biometric.pipl_sensitive
