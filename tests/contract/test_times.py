"""One parser for typed times, with the CLI's rule (a bare time refused) and the console's (a bare time is UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from lineage.cli._common import parse_time as cli_time
from lineage.console.service import parse_when as console_time
from lineage.contract.times import Bare, parse_time
from lineage.errors import InvalidEventError


def test_a_time_with_an_offset_is_the_same_for_every_rule() -> None:
    """An offset given is kept, whichever rule reads it, and through either door."""
    want = datetime(2026, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    for bare in Bare:
        assert parse_time("from", "2026-05-01T08:00+08:00", bare=bare) == want
    assert cli_time("--from", "2026-05-01T08:00+08:00") == want == console_time("from", "2026-05-01T08:00+08:00")


def test_the_cli_refuses_a_bare_time_naming_its_option() -> None:
    """``--from 2026-05-01T08:00`` is one line naming the option and asking for an offset."""
    with pytest.raises(InvalidEventError, match=r"^--from='2026-05-01T08:00': needs a UTC offset"):
        cli_time("--from", "2026-05-01T08:00")


def test_the_console_reads_a_bare_time_as_utc() -> None:
    """A ``datetime-local`` form value (no offset, the form says UTC) is that time in UTC; blank is not given."""
    assert console_time("as_of", "2026-05-01T08:00") == datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    assert console_time("as_of", "") is None and console_time("as_of", None) is None
    assert cli_time("--as-of", None) is None


@pytest.mark.parametrize("text", ["9999-12-31T23:30-01:00", "0001-01-01T00:30+01:00", "1899-12-31T23:00Z"])
def test_both_doors_refuse_a_time_outside_the_contract_years_in_utc(text: str) -> None:
    """A time whose UTC falls outside 1900-9999 is refused at the door (it would overflow inside a query)."""
    for call in (lambda: cli_time("--to", text), lambda: console_time("to", text)):
        with pytest.raises(InvalidEventError, match=r"to=.*must be between the years 1900 and 9999 \(UTC\)"):
            call()


def test_a_time_that_is_not_iso_8601_is_one_line_naming_the_field_cut_short() -> None:
    """Garbage is one line naming the field, with at most 40 of its characters."""
    with pytest.raises(InvalidEventError) as caught:
        console_time("since", "x" * 5000)
    message = str(caught.value)
    assert message.startswith("since=") and "is not an ISO 8601 time" in message
    assert "\n" not in message and "x" * 41 not in message
    assert caught.value.field == "since"
