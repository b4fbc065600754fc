"""The domain rules: each defined once in Python, and the SQL macros that state them agree with it."""

from __future__ import annotations

import functools
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
from hypothesis import example, given
from hypothesis import strategies as st

from lineage import default_taxonomy
from lineage.answers.rows import RETENTION_NEVER
from lineage.contract.rules import covered, covers, crosses_border, retention_end, sensitivity
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


# hypothesis takes naive bounds; ``timezones=`` makes each value drawn UTC
_FIRST, _LAST = datetime(1, 1, 2), datetime(9999, 12, 31, 23, 59, 59)  # noqa: DTZ001

# the macro as it was written on the time zone calendar: the epoch form must give the same instants
_CALENDAR_RETENTION_END = """
    SELECT CASE
        WHEN $days IS NULL THEN NULL
        WHEN $days >= datediff('day', $at, TIMESTAMPTZ '9999-12-31 00:00:00+00')
            THEN TIMESTAMPTZ '9999-12-31 23:59:59.999999+00'
        ELSE $at + to_days(CAST(least($days, 100000000) AS INTEGER))
    END
"""


@given(
    st.datetimes(min_value=_FIRST, max_value=_LAST, timezones=st.just(UTC)),
    st.one_of(st.none(), st.integers(0, 400_000), st.integers(2_900_000, 2**31 - 1)),
)
@example(datetime(1700, 1, 1, tzinfo=UTC), 3_020_000)  # ends in 9968: was cut to 3,000,000 days (9913)
def test_sql_retention_end_counts_days_on_the_epoch_as_the_calendar_did(at: datetime, days: int | None) -> None:
    """``retention_end`` (on epoch microseconds) equals the calendar form it replaced, up to the 9999 clamp."""
    with _macros() as con:
        row = con.execute("SELECT retention_end($at, $days)", {"at": at, "days": days}).fetchone()
        was = con.execute(_CALENDAR_RETENTION_END, {"at": at, "days": days}).fetchone()
    assert row is not None and was is not None and row[0] == was[0]
    assert retention_end(at, days) == row[0]  # the Python rule (a person's point-read holdings) agrees
    if days is not None and row[0] != RETENTION_NEVER:
        assert row[0] == at + timedelta(days=days)  # the reference model's rule: whole days of 86,400 s


@given(
    st.datetimes(min_value=_FIRST, max_value=_LAST - timedelta(days=1), timezones=st.just(UTC)),
    st.integers(-2, 2),
)
def test_sql_retention_end_clamps_at_the_same_day_as_the_calendar_did(at: datetime, off: int) -> None:
    """Periods ending either side of 9999-12-31 (times before 1970 too): clamped exactly where they were."""
    days = max(0, (datetime(9999, 12, 31, tzinfo=UTC).date() - at.date()).days + off)
    with _macros() as con:
        row = con.execute("SELECT retention_end($at, $days)", {"at": at, "days": days}).fetchone()
        was = con.execute(_CALENDAR_RETENTION_END, {"at": at, "days": days}).fetchone()
    assert row is not None and was is not None and row[0] == was[0]
    assert retention_end(at, days) == row[0]
