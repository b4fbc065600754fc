"""The contract's rules: each bad event is refused with an error naming the field."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from lineage import InvalidEventError, Party, UnknownValueError, default_taxonomy, is_cross_border, validate
from lineage.contract.records import build_event
from tests.fixtures import T0, sample_events

COLLECT: dict[str, Any] = {
    "system": "checkout",
    "system_region": "CN",
    "subject_id": "user-1",
    "categories": ["user.contact.phone_number"],
    "purpose": "essential.service",
    "legal_basis": "CONTRACT",
    "occurred_at": T0,
}
SHARE: dict[str, Any] = {
    **COLLECT,
    "legal_basis": None,
    "recipient": Party(name="sms-vendor", role="processor", region="CN"),
}


def _bad(kind: str, base: dict[str, Any], **changes: Any) -> tuple[str, dict[str, Any]]:
    return kind, {**base, **changes}


BAD = [
    # (event type, fields, field named in the error, text in the message)
    (*_bad("COLLECTED", COLLECT, categories=["user.phone"]), "categories", "user.contact.phone_number"),
    (*_bad("COLLECTED", COLLECT, categories=[]), "categories", "at least one"),
    (*_bad("COLLECTED", COLLECT, categories="user.contact.email"), "categories", "not one string"),
    (*_bad("COLLECTED", COLLECT, occurred_at=datetime(2026, 5, 1, 8, 0)), "occurred_at", "timezone-aware"),  # noqa: DTZ001
    (*_bad("COLLECTED", COLLECT, occurred_at="2026-05-01"), "occurred_at", "datetime"),
    (*_bad("COLLECTED", COLLECT, system_region="XX"), "system_region", "unknown region"),
    (*_bad("COLLECTED", COLLECT, system_region="HongKong"), "system_region", "unknown region"),
    (*_bad("COLLECTED", COLLECT, subject_id=""), "subject_id", "non-empty"),
    (*_bad("COLLECTED", COLLECT, subject_id=None), "subject_id", "non-empty"),
    (*_bad("COLLECTED", COLLECT, purpose=None), "purpose", "needs a purpose"),
    (*_bad("COLLECTED", COLLECT, purpose="marketing.spam"), "purpose", "unknown purpose"),
    (*_bad("COLLECTED", COLLECT, legal_basis=None), "legal_basis", "needs a legal basis"),
    (*_bad("COLLECTED", COLLECT, legal_basis="because"), "legal_basis", "must be one of"),
    (*_bad("COLLECTED", COLLECT, retention_days=-1), "retention_days", "whole number of days, 0 to"),
    (*_bad("COLLECTED", COLLECT, retention_days="365"), "retention_days", "whole number"),
    (*_bad("COLLECTED", COLLECT, retention_days=2**31), "retention_days", "0 to 2147483647"),
    (
        *_bad("COLLECTED", COLLECT, occurred_at=datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))),
        "occurred_at",
        "out of range (years 1900",
    ),
    (*_bad("COLLECTED", COLLECT, occurred_at=datetime(1800, 1, 1, tzinfo=UTC)), "occurred_at", "out of range"),
    (*_bad("COLLECTED", COLLECT, mechanism="pipl.standard_contract"), "mechanism", "does not belong on a COLLECTED"),
    (*_bad("COLLECTED", COLLECT, erasure_outcome="ERASED"), "erasure_outcome", "does not belong"),
    (*_bad("COLLECTED", COLLECT, consent_status="GRANTED"), "consent_status", "does not belong"),
    (*_bad("COLLECTED", COLLECT, encrypted="yes"), "encrypted", "true, false"),
    (*_bad("COLLECTED", COLLECT, source=7), "source", "string"),
    (*_bad("COLLECTED", COLLECT, subject_jurisdiction="Mars"), "subject_jurisdiction", "unknown region"),
    (*_bad("COLLECTED", COLLECT, event_id="not-a-uuid"), "event_id", "UUID"),
    (*_bad("COLLECTED", COLLECT, subjct_id="x"), "subjct_id", "did you mean 'subject_id'"),
    (
        *_bad("COLLECTED", COLLECT, recipient=Party(name="x", role="processor", region="CN")),
        "recipient",
        "no recipient",
    ),
    (*_bad("COLLECTED", COLLECT, subject_id=None, bulk_as_of=T0), "scope", "about one subject"),
    (*_bad("SHARED", SHARE, recipient=None), "recipient", "needs a recipient"),
    (*_bad("SHARED", SHARE, recipient=Party(name="sdk", role="vendor", region="CN")), "recipient.role", "unknown role"),
    (*_bad("SHARED", SHARE, recipient=Party(name="sdk", role="processor", region="ZZ")), "recipient.region", "region"),
    (*_bad("SHARED", SHARE, recipient=Party(name="", role="processor", region="CN")), "recipient.name", "non-empty"),
    (*_bad("SHARED", SHARE, recipient=Party(name="hk", role="affiliate", region="HK")), "mechanism", "cross-border"),
    (
        *_bad("SHARED", SHARE, recipient=Party(name="eu", role="processor", region="DE"), mechanism="gdpr.scc"),
        "mechanism",
        "not recognised by PIPL",
    ),
    (
        *_bad("SHARED", SHARE, recipient=Party(name="hk", role="processor", region="HK"), mechanism="pipl.magic"),
        "mechanism",
        "unknown transfer mechanism",
    ),
    (*_bad("SHARED", SHARE, transfer_kind="CROSS_BORDER"), "transfer_kind", "does not belong on a SHARED event"),
    (*_bad("TRANSFERRED", SHARE, transfer_kind=None), "transfer_kind", "needs a transfer kind"),
    (*_bad("TRANSFERRED", SHARE, transfer_kind="CROSS_BORDER"), "transfer_kind", "same zone"),
    (*_bad("SHARED", SHARE, subject_id=None, bulk_as_of=None, scope="BULK"), "bulk_as_of", "needs the time"),
    (*_bad("SHARED", SHARE, subject_id="user-1", bulk_as_of=T0), "bulk_as_of", "only a BULK"),
    (*_bad("SHARED", SHARE, subject_id=None, bulk_as_of=T0 + timedelta(minutes=10), scope="BULK"), "bulk_as_of",
     "is after occurred_at"),  # fmt: skip
    (*_bad("ERASED", COLLECT, erasure_outcome=None, legal_basis=None), "erasure_outcome", "needs an outcome"),
    (*_bad("ERASED", COLLECT, erasure_outcome="HOLD", legal_basis=None), "hold_reason", "legal reason"),
    (*_bad("CONSENT", COLLECT, consent_kind="GENERAL", legal_basis=None), "consent_status", "GRANTED or WITHDRAWN"),
    (*_bad("CONSENT", COLLECT, consent_status="GRANTED", legal_basis=None), "consent_kind", "needs a kind"),
    (*_bad("CONSENT", COLLECT, consent_status="MAYBE", consent_kind="GENERAL"), "consent_status", "must be one of"),
    (*_bad("FORWARDED", COLLECT), "event_type", "must be one of"),
]


@pytest.mark.parametrize(("kind", "fields", "field", "text"), BAD, ids=[f"{b[2]}:{b[3]}" for b in BAD])
def test_bad_event_is_refused_naming_the_field(kind: str, fields: dict[str, Any], field: str, text: str) -> None:
    """Each bad event raises InvalidEventError whose field and message say what is wrong."""
    with pytest.raises(InvalidEventError) as info:
        validate(build_event(kind, **fields), default_taxonomy())
    assert info.value.field == field
    assert text in str(info.value)
    assert field in str(info.value)


def test_validation_errors_are_value_errors() -> None:
    """Callers catching ValueError also catch contract violations."""
    with pytest.raises(ValueError, match="categories"):
        validate(build_event("COLLECTED", **{**COLLECT, "categories": ["nope"]}), default_taxonomy())


def test_unknown_category_suggests_close_keys() -> None:
    """An unknown category's error lists the closest valid keys."""
    with pytest.raises(UnknownValueError) as info:
        validate(build_event("COLLECTED", **{**COLLECT, "categories": ["user.contact.phone"]}), default_taxonomy())
    assert "user.contact.phone_number" in info.value.suggestions


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: f"{e.event_type}-{e.scope}")
def test_sample_events_are_valid(event: Any) -> None:
    """Every sample event passes validation (so the bad cases above fail for their own reason)."""
    validate(event, default_taxonomy())


def test_mainland_to_hong_kong_is_cross_border() -> None:
    """CN and HK are different zones: PIPL treats CN to HK as cross-border."""
    share = build_event("SHARED", **{**SHARE, "recipient": Party(name="hk", role="processor", region="HK")})
    assert is_cross_border(share, default_taxonomy())
    inside_eea = dataclasses.replace(
        share,
        holder=Party(name="a", role="internal", region="DE"),
        recipient=Party(name="b", role="processor", region="FR"),
    )
    assert not is_cross_border(inside_eea, default_taxonomy())


def test_remembered_combinations_still_check_per_event_fields() -> None:
    """After a valid record, one with the same shape but a bad subject, or a new bad purpose, is refused."""
    from lineage.contract.records import make_record
    from lineage.contract.validation import Validator

    validator = Validator(default_taxonomy())
    good = make_record("COLLECTED", **COLLECT)
    validator.check(good)
    validator.check(good)
    with pytest.raises(InvalidEventError, match="subject_id"):
        validator.check({**good, "subject_id": ""})
    with pytest.raises(InvalidEventError, match="purpose"):
        validator.check({**good, "purpose": "nonsense"})
    with pytest.raises(InvalidEventError, match="categories"):
        validator.check({**good, "categories": [["not", "hashable"]]})


_LONE = "\ud800"  # a lone surrogate: a valid Python str that has no UTF-8 encoding


@pytest.mark.parametrize(
    ("field", "fields"),
    [
        ("subject_id", {"subject_id": "user" + _LONE}),
        ("linked_subject_ids", {"linked_subject_ids": ["device" + _LONE]}),
        ("holder.name", {"holder": Party(name="crm" + _LONE, role="internal", region="CN")}),
        ("consent_ref", {"consent_ref": "form" + _LONE}),
        ("source", {"source": "partner" + _LONE}),
    ],
)
def test_text_that_cannot_be_utf8_is_refused_naming_the_field(field: str, fields: dict[str, Any]) -> None:
    """A lone surrogate in any string field is an InvalidEventError naming the field, never a UnicodeEncodeError."""
    base: dict[str, Any] = {
        "subject_id": "u1",
        "categories": ["user.contact.email"],
        "purpose": "essential.service",
        "legal_basis": "CONTRACT",
        "occurred_at": T0,
    }
    event = build_event("COLLECTED", system="web", system_region="CN", **(base | fields))
    with pytest.raises(InvalidEventError, match="UTF-8") as caught:
        validate(event, default_taxonomy())
    assert caught.value.field == field


@pytest.mark.parametrize("field", ["subject_id", "linked_subject_ids"])
def test_unencodable_identifier_is_not_echoed(field: str) -> None:
    """Refusing an identifier that is not UTF-8 names the field but never shows the identifier."""
    value: Any = "bob@example.com" + _LONE
    event = build_event(
        "COLLECTED",
        system="web",
        system_region="CN",
        subject_id=value if field == "subject_id" else "u1",
        linked_subject_ids=[value] if field == "linked_subject_ids" else [],
        categories=["user.contact.email"],
        purpose="essential.service",
        legal_basis="CONTRACT",
        occurred_at=T0,
    )
    with pytest.raises(InvalidEventError) as caught:
        validate(event, default_taxonomy())
    assert str(caught.value).startswith(field) and "bob@example.com" not in str(caught.value)
    assert "bob@example.com" not in repr(caught.value.value)


@pytest.mark.parametrize("subject", ["bob@example.com ", " bob@example.com", "bob@example.com\n", "bob\x00x"])
def test_an_identifier_with_edge_spaces_or_control_characters_is_refused(subject: str) -> None:
    """Ids that differ from a person's only by spaces or control characters would split them: refused, not echoed."""
    event = build_event(
        "COLLECTED", system="web", system_region="CN", subject_id=subject, categories=["user.contact.email"],
        purpose="essential.service", legal_basis="CONTRACT", occurred_at=T0,
    )  # fmt: skip
    with pytest.raises(InvalidEventError) as caught:
        validate(event, default_taxonomy())
    assert caught.value.field == "subject_id" and "bob" not in str(caught.value)
