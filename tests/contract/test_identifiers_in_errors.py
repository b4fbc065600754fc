"""Errors and dead-letter headers name the field and the problem, never a person's identifier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lineage import Codec, InputLineError, InvalidEventError, default_taxonomy
from lineage.contract.records import make_record, to_record
from lineage.contract.validation import validate_record
from lineage.ingest.pipeline import Ingestor
from lineage.sdk.jsonlines import parse_lines
from tests.fixtures import GOOD_LINE, sample_events

SECRET = "bob@example.com"


def _line(**changes: Any) -> str:
    fields = json.loads(GOOD_LINE) | changes
    return json.dumps(fields)


@pytest.mark.parametrize(
    "line",
    [
        _line(subject_id=SECRET * 40),  # too long
        _line(subject_id=[SECRET]),  # not a string
        _line(linked_subject_ids=SECRET),  # one string, not a list
        _line(linked_subject_ids=[SECRET, ""]),
        _line(linked_subject_ids=[SECRET * 40]),
        _line(subjectid=SECRET),  # an unknown field may hold anything
        _line(consent_ref=[SECRET]),
        _line(subject_id=SECRET, scope="bulk", bulk_as_of="2026-05-01T08:00:00+08:00"),
    ],
)
def test_emit_error_lines_hold_no_identifier(line: str) -> None:
    """A bad JSON line's error names the field but not the subject's identifier."""
    [error] = parse_lines([line], system="web", region="CN", taxonomy=default_taxonomy())
    assert isinstance(error, InputLineError)
    assert SECRET not in str(error) and "bob" not in str(error)
    assert error.field is not None and error.field in str(error)


def test_dead_letter_reason_holds_no_identifier(tmp_path: Path) -> None:
    """The dead-letter reason header of an invalid event names the field, not the subject; the payload is kept."""
    record = to_record(sample_events()[0])
    record["subject_id"] = SECRET
    record["linked_subject_ids"] = [SECRET * 40]  # too long: refused, naming the field
    value = Codec().encode_record(record)
    letter = Ingestor(tmp_path / "store", "events", taxonomy=default_taxonomy()).add(0, 0, value)
    assert letter is not None
    assert "linked_subject_ids" in letter.reason and SECRET not in letter.reason
    assert letter.value == value


def test_the_error_keeps_the_value_for_the_program() -> None:
    """The InvalidEventError still carries the value as an attribute (for code, not for messages)."""
    record = make_record(
        "COLLECTED", system="web", system_region="CN", subject_id=SECRET * 40,
        categories=["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT",
    )  # fmt: skip
    with pytest.raises(InvalidEventError) as caught:
        validate_record(record, default_taxonomy())
    assert caught.value.field == "subject_id" and SECRET not in str(caught.value)
    assert caught.value.value is not None


def test_other_fields_still_show_their_value() -> None:
    """A field that is not an identifier (a category) still shows the bad value, to help fix it."""
    [error] = parse_lines([_line(categories=["user.mail"])], system="web", region="CN", taxonomy=default_taxonomy())
    assert "user.mail" in str(error)
