"""The emitter SDK against the in-memory sink: defaults, keys, refusals, delivery failures."""

from __future__ import annotations

from datetime import datetime

import pytest

from lineage import Codec, DeliveryError, Emitter, EventType, InvalidEventError, Party, Scope, UndeliveredError
from lineage.testing import MemorySink
from tests.fixtures import T0, sample_events

PAY = Party(name="pay-sdk", role="processor", region="CN")


def _emitter(sink: MemorySink) -> Emitter:
    return Emitter(system="checkout", region="CN", sink=sink)


def test_collected_fills_defaults_and_keys_by_subject() -> None:
    """A one-line call gets an id, a time, scope SUBJECT, this system as holder, and the subject as key."""
    sink = MemorySink()
    _emitter(sink).collected("user-7", ["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT")
    [msg] = sink.messages
    event = Codec().decode(msg.value)
    assert msg.key == b"user-7"
    assert event.event_type is EventType.COLLECTED and event.scope is Scope.SUBJECT
    assert event.holder == Party(name="checkout", role="internal", region="CN")
    assert event.occurred_at.tzinfo is not None and event.event_id == msg.event_id


def test_further_fields_go_into_the_event_and_unknown_ones_are_refused() -> None:
    """Keyword details (retention, a jurisdiction) reach the event; a misspelt one is refused naming it."""
    sink = MemorySink()
    emitter = _emitter(sink)
    emitter.collected("user-7", ["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT",
                      retention_days=30, subject_jurisdiction="HK")  # fmt: skip
    emitter.collected("user-8", ["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT")
    first, second = (Codec().decode(m.value) for m in sink.messages)
    assert (first.retention_days, first.subject_jurisdiction) == (30, "HK")
    assert (second.retention_days, second.subject_jurisdiction) == (None, None)
    with pytest.raises(InvalidEventError, match="retention_dayz"):
        emitter.collected("user-9", ["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT",
                          retention_dayz=30)  # fmt: skip
    assert len(sink.messages) == 2


def test_bulk_export_is_keyed_by_holder() -> None:
    """A bulk share (no subject, an as-of time) is scope BULK and keyed by the holding system."""
    sink = MemorySink()
    _emitter(sink).shared(None, ["user.name"], recipient=PAY, purpose="essential.service", bulk_as_of=T0)
    event = Codec().decode(sink.messages[0].value)
    assert event.scope is Scope.BULK and event.bulk_as_of == T0
    assert sink.messages[0].key == b"checkout"


def test_bad_event_is_refused_before_sending() -> None:
    """An invalid call raises and sends nothing."""
    sink = MemorySink()
    with pytest.raises(InvalidEventError, match="occurred_at"):
        _emitter(sink).collected(
            "u",
            ["user.contact.email"],
            purpose="essential.service",
            legal_basis="CONTRACT",
            occurred_at=datetime(2026, 1, 1),  # noqa: DTZ001 - the naive time under test
        )
    assert sink.messages == []


def test_unknown_emitter_region_is_refused() -> None:
    """The emitter's own region must be a known ISO code."""
    with pytest.raises(InvalidEventError, match="region"):
        Emitter(system="checkout", region="Atlantis", sink=MemorySink())


def test_delivery_failure_surfaces_from_result_and_next_call() -> None:
    """A failed delivery raises from its handle, and again from the emitter's next call."""
    sink = MemorySink(fail_next=1)
    emitter = _emitter(sink)
    handle = emitter.consent("u", ["user.contact.email"], status="GRANTED", kind="GENERAL", purpose="essential.service")
    with pytest.raises(DeliveryError, match="injected failure"):
        handle.result()
    with pytest.raises(DeliveryError):
        emitter.collected("u", ["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT")
    emitter.collected("u", ["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT")
    assert len(sink.messages) == 1


def test_context_manager_closes_and_raises_pending_failures() -> None:
    """Leaving the with-block closes the sink and raises an unreported delivery failure."""
    sink = MemorySink(fail_next=1)
    with pytest.raises(DeliveryError), _emitter(sink) as emitter:
        emitter.erased("u", ["user.contact.email"], outcome="ERASED")
    assert sink.closed


def test_every_method_emits_its_type() -> None:
    """collected, shared, transferred, erased and consent each emit their own event type."""
    sink = MemorySink()
    e = _emitter(sink)
    e.collected("u", ["user.contact.email"], purpose="essential.service", legal_basis="CONSENT")
    e.shared("u", ["user.contact.email"], recipient=PAY, purpose="essential.service")
    e.transferred(
        "u",
        ["user.contact.email"],
        recipient=Party(name="hk", role="affiliate", region="HK"),
        purpose="essential.service",
        mechanism="pipl.standard_contract",
    )
    e.erased("u", ["user.contact.email"])
    e.consent("u", ["user.contact.email"], status="WITHDRAWN", kind="SEPARATE", purpose="essential.service")
    codec = Codec()
    assert [codec.decode(m.value).event_type.value for m in sink.messages] == [
        "COLLECTED",
        "SHARED",
        "TRANSFERRED",
        "ERASED",
        "CONSENT",
    ]


def test_lone_surrogate_subject_is_a_lineage_error_and_sends_nothing() -> None:
    """A lone surrogate in subject_id is an InvalidEventError naming the field, not UnicodeEncodeError; nothing sent."""
    sink = MemorySink()
    with pytest.raises(InvalidEventError, match="^subject_id"):
        _emitter(sink).collected("\ud800", ["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT")
    assert sink.messages == []


def test_emit_batch_answers_each_message_in_place_and_keeps_earlier_failures_for_later() -> None:
    """A message refused at send is its DeliveryError in place; an earlier failure is raised by the next emit."""
    from lineage.contract.records import to_record
    from lineage.contract.validation import Validator
    from lineage.sdk.prepared import Preparer

    sink = MemorySink(fail_next=1)
    emitter = Emitter(system="checkout", region="CN", sink=sink)
    first, *rest = [e for e in sample_events() if e.system == "checkout"][:3]
    emitter.emit(first)  # fails: reported later, not by the batch
    prepare = Preparer(Validator(emitter.taxonomy), emitter.codec)
    batch = [prepare(to_record(e)) for e in rest]
    sink.down = True
    assert [type(d).__name__ for d in emitter.emit_batch(batch[:1])] == ["DeliveryError"]
    sink.down = False
    [delivery] = emitter.emit_batch(batch[1:])
    assert not isinstance(delivery, DeliveryError) and delivery.result() is not None
    assert [m.event_id for m in sink.messages] == [rest[1].event_id]
    with pytest.raises(UndeliveredError) as caught:
        emitter.flush()
    assert caught.value.event_ids == (first.event_id,)
