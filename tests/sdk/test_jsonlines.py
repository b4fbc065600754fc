"""JSON lines for ``lineage emit``: parsed with the SDK's rules, bad lines named by number."""

from __future__ import annotations

import json

import pytest

from lineage import InputLineError, PersonalDataEvent, default_taxonomy
from lineage.errors import shown
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


HOSTILE = [
    "[" * 100_000 + "]" * 100_000,  # nesting deeper than the parser's recursion
    '{"a": ' * 50_000 + "1" + "}" * 50_000,
    GOOD_LINE.replace("}", ', "retention_days": ' + "9" * 4300 + "}"),  # at int's 4300-digit str() limit
    GOOD_LINE.replace("}", ', "retention_days": ' + "9" * 4301 + "}"),  # past it: json.loads refuses
    GOOD_LINE.replace('"u1"', '"\\ud800"'),  # a lone surrogate: no UTF-8 for it
    GOOD_LINE.replace('"u1"', '"u1\\udfff"'),
    GOOD_LINE.replace('"contract"', '"\\ud83d"'),
    '{"event_type": "collected", "subject_id": "u1", "occurred_at": 1e999}',
    "\x00\x01",
]


@pytest.mark.parametrize("line", HOSTILE)
def test_hostile_lines_are_refused_and_the_next_good_line_kept(line: str) -> None:
    """Deep nesting, huge numbers, lone surrogates: one InputLineError for that line, the next line still parses."""
    results = _parse(line, GOOD_LINE)
    assert isinstance(results[0], InputLineError) and results[0].line == 1
    assert "\n" not in str(results[0])
    assert isinstance(results[1], PersonalDataEvent)


def test_a_line_with_invalid_utf8_bytes_is_refused() -> None:
    """A line read with surrogateescape (bytes that are not UTF-8) is refused, naming the problem."""
    text = b'{"event_type": "collected", "subject_id": "\xff"}'.decode("utf-8", "surrogateescape")
    [error] = _parse(text)
    assert isinstance(error, InputLineError) and "UTF-8" in str(error)


FORGING_NAMES = ["a\nlineage emit: line 9: forged", "\x1b[2J\x1b[31mred", "x\u202eevil", "tab\there", "n" * 500]


@pytest.mark.parametrize("name", FORGING_NAMES)
def test_a_crafted_field_name_is_escaped_as_values_are(name: str) -> None:
    """A field name with a newline, ESC, U+202E or a great length is shown escaped and cut: one printable line."""
    line = json.dumps(json.loads(GOOD_LINE) | {name: "v"})
    [error] = _parse(line)
    assert isinstance(error, InputLineError)
    message = str(error)
    assert message.isprintable() and message.isascii() and name not in message
    assert message.startswith("line 1: " + shown(name)[:20])


def test_a_plain_field_name_is_shown_as_it_is() -> None:
    """An ordinary misspelt field name is shown unquoted, with the suggestion."""
    [error] = _parse(json.dumps(json.loads(GOOD_LINE) | {"purpse": "x"}))
    assert str(error).startswith("line 1: purpse: unknown event field")
