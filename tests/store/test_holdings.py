"""The holdings macro (multi-hop, time-respecting, with erasures) matches the brute-force reference."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lineage.contract.records import Record
from tests import reference
from tests.fixtures import at_minute, examples, histories, micros, store_of


@settings(max_examples=examples(60))
@given(histories(), st.integers(0, 35))
def test_holdings_match_the_reference(records: list[Record], as_of_minute: int) -> None:
    """For random histories with chained bulk flows and erasures, SQL holdings equal the reference."""
    as_of = at_minute(as_of_minute)
    with tempfile.TemporaryDirectory() as folder:
        store = store_of(records, Path(folder))
        with store.connect() as con:
            rows = con.sql("SELECT * FROM holdings(NULL, $as_of)", params={"as_of": as_of}).to_arrow_table().to_pylist()
    got = {
        (r["subject"], r["category"], r["holder"], micros(r["arrived_at"]), r["via"], micros(r["ended_at"]))
        for r in rows
    }
    assert got == reference.holdings(records, None, micros(as_of) or 0)
