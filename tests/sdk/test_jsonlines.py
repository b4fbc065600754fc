"""JSON lines for ``lineage emit``: parsed with the SDK's rules, bad lines named by number."""

from __future__ import annotations

import json

from lineage import InputLineError, PersonalDataEvent, default_taxonomy
from lineage.sdk.jsonlines import event_to_json, parse_lines
from tests.fixtures import GOOD_LINE, sample_events


def _parse(*lines: str) -> list[PersonalDataEvent | InputLineError]:
    return list(parse_lines(lines, system="web", region="CN", taxonomy=default_taxonomy()))


def test_good_line_becomes_an_event() -> None:
    """A line with lower-case enum names and an offset time parses to a valid event."""
    [event] = _parse(GOOD_LINE)
    assert isinstance(event, PersonalDataEvent)
    assert event.system == "web" and event.occurred_at.utcoffset() is not None


def test_bad_lines_are_reported_by_number_and_good_ones_kept() -> None:
    """Each bad line yields an error with its 1-based number and field; the good lines still parse."""
    naive = GOOD_LINE.replace("+08:00", "")
    results = _parse(
        GOOD_LINE, "{not json", "", naive, '["a list"]', GOOD_LINE.replace("user.contact.email", "user.mail"), GOOD_LINE
    )
    errors = [r for r in results if isinstance(r, InputLineError)]
    assert [(e.line, e.field) for e in errors] == [(2, None), (4, "occurred_at"), (5, None), (6, "categories")]
    assert "line 4: occurred_at=" in str(errors[1])
    assert sum(isinstance(r, PersonalDataEvent) for r in results) == 2


def test_missing_event_type_is_named() -> None:
    """A line without event_type says so."""
    [error] = _parse(json.dumps({"subject_id": "u"}))
    assert isinstance(error, InputLineError) and error.field == "event_type"


def test_event_to_json_round_trips_through_parse() -> None:
    """Every sample event printed as JSON parses back to an equal event."""
    for event in sample_events():
        [back] = _parse(json.dumps(event_to_json(event)))
        assert back == event
