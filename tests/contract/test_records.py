"""Records built from plain values: event ids, lists of the record's own, enum spellings."""

from __future__ import annotations

import random
import uuid
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage import InvalidEventError
from lineage.contract.records import make_record, new_event_id
from tests.fixtures import T0, examples


@settings(max_examples=examples(500))
@given(st.integers(0, 2**128 - 1))
def test_event_id_is_the_version_4_uuid_of_its_random_bits(bits: int) -> None:
    """new_event_id gives exactly the string uuid.UUID(int=bits, version=4) gives for the same 128 bits."""
    with mock.patch.object(random, "getrandbits", lambda k: bits):
        made = new_event_id()
    assert made == str(uuid.UUID(int=bits, version=4))
    assert uuid.UUID(made).version == 4 and uuid.UUID(made).variant == uuid.RFC_4122


def test_linked_subject_ids_are_the_records_own_list() -> None:
    """Two records without links never share one list: appending to one leaves the other (and the default) empty."""
    a = make_record("COLLECTED", system="s", system_region="CN", subject_id="u", categories=["user.name"],
                    purpose="essential.service", legal_basis="CONTRACT", occurred_at=T0)  # fmt: skip
    b = make_record("COLLECTED", system="s", system_region="CN", subject_id="v", categories=["user.name"],
                    purpose="essential.service", legal_basis="CONTRACT", occurred_at=T0)  # fmt: skip
    a["linked_subject_ids"].append("w")
    assert b["linked_subject_ids"] == []
    fresh = make_record("CONSENT", system="s", system_region="CN", subject_id="u", categories=["user.name"],
                        purpose="essential.service", consent_status="granted", consent_kind="general")  # fmt: skip
    assert fresh["linked_subject_ids"] == []


@pytest.mark.parametrize("links", ["user-2", 0, None])
def test_links_that_are_not_a_list_are_refused(links: object) -> None:
    """linked_subject_ids given one string, a number or null is refused naming the field."""
    with pytest.raises(InvalidEventError, match="linked_subject_ids"):
        make_record("COLLECTED", system="s", system_region="CN", subject_id="u", categories=["user.name"],
                    purpose="essential.service", legal_basis="CONTRACT", linked_subject_ids=links)  # fmt: skip


def test_enum_fields_take_any_case_and_refuse_others() -> None:
    """legal_basis in lower case is stored canonical; a value outside the enum is refused naming the field."""
    record = make_record("collected", system="s", system_region="CN", subject_id="u", categories=["user.name"],
                         purpose="essential.service", legal_basis="contract", occurred_at=T0)  # fmt: skip
    assert (record["event_type"], record["legal_basis"], record["scope"]) == ("COLLECTED", "CONTRACT", "SUBJECT")
    with pytest.raises(InvalidEventError, match="legal_basis"):
        make_record("COLLECTED", system="s", system_region="CN", subject_id="u", categories=["user.name"],
                    purpose="essential.service", legal_basis="whim", occurred_at=T0)  # fmt: skip
