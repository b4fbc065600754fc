"""The relay and Emitter.take_failures on the in-memory sink (the same path runs on Kafka in test_outage)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lineage import Emitter, Settings
from lineage.contract.events import PersonalDataEvent
from lineage.contract.records import to_record
from lineage.contract.validation import Validator
from lineage.gateway.relay import Relay, Unacknowledged
from lineage.sdk.prepared import Prepared, Preparer
from lineage.testing import MemorySink
from tests.fixtures import sample_events, wait_until


def _emitter(sink: MemorySink, spool: Path | None = None) -> Emitter:
    return Emitter(system="checkout", region="CN", sink=sink, settings=Settings(spool_dir=spool))


def _prepared(emitter: Emitter, events: list[PersonalDataEvent]) -> list[Prepared]:
    prepare = Preparer(Validator(emitter.taxonomy), emitter.codec)
    return [prepare(to_record(e)) for e in events]


def test_take_failures_returns_them_once_and_later_calls_do_not_raise_them() -> None:
    """A caller that read each delivery takes the failures; the next emit sends instead of raising them."""
    sink = MemorySink(fail_next=1)
    emitter = _emitter(sink)
    first, second = sample_events()[:2]
    emitter.emit(first)
    assert emitter.take_failures() == [first.event_id]
    assert emitter.take_failures() == []
    emitter.emit(second).result()  # would raise UndeliveredError naming the first without take_failures
    assert [m.event_id for m in sink.messages] == [second.event_id]


def test_a_relay_answers_which_events_the_broker_lacks_and_a_retry_sends_only_those() -> None:
    """Without a spool a failed event fails the request naming it; the retry resends it alone."""
    sink = MemorySink(fail_next=1)
    relay = Relay(_emitter(sink))
    events = _prepared(relay.emitter, sample_events()[:3])
    with pytest.raises(Unacknowledged) as caught:
        relay.send(events)
    assert caught.value.missing == (events[0].event_id,)
    outcome = relay.send(events)
    assert (outcome.acknowledged, outcome.duplicates, outcome.spooled) == (1, 2, 0)
    assert sorted(m.event_id for m in sink.messages) == sorted(e.event_id for e in events)


def test_with_a_spool_a_failed_event_is_spooled_and_counted(tmp_path: Path) -> None:
    """With a spool, a refused event (and those queued behind it) is spooled, counted, and sent by tick()."""
    sink = MemorySink(fail_next=1)
    relay = Relay(_emitter(sink, tmp_path / "spool"))
    events = _prepared(relay.emitter, sample_events()[:3])
    outcome = relay.send(events)
    assert outcome.acknowledged + outcome.spooled == 3 and outcome.spooled >= 1
    wait_until(lambda: relay.tick() == 0, "the spool resent")
    assert sorted(m.event_id for m in sink.messages) == sorted(e.event_id for e in events)


def test_the_app_keeps_moving_the_spool_on_after_a_failed_round(tmp_path: Path) -> None:
    """A tick that raises is logged and tried again a second later: the background loop does not die."""
    from fastapi.testclient import TestClient

    from lineage.gateway.app import Gateway, create_app
    from lineage.gateway.limits import RateLimit
    from lineage.gateway.tokens import ServiceTokens

    relay = Relay(_emitter(MemorySink()))
    calls: list[int] = []

    def tick() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk full")
        return 0

    relay.tick = tick  # type: ignore[method-assign]
    app = create_app(Gateway(ServiceTokens(tmp_path / "t.json"), relay, RateLimit(0)))
    with TestClient(app) as client:
        assert client.get("/health").json() == {"status": "ok", "spooled": 0}
        wait_until(lambda: len(calls) >= 2, "a second tick after the failed one", timeout_s=60)


def test_a_bug_is_a_500_with_the_headers_and_one_log_line_without_its_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected exception: 500 naming its type, no-store and nosniff set, logged by its type only."""
    from fastapi.testclient import TestClient

    from lineage.gateway.app import Gateway, create_app
    from lineage.gateway.limits import RateLimit
    from lineage.gateway.tokens import ServiceTokens
    from lineage.sdk.jsonlines import event_to_json

    relay = Relay(_emitter(MemorySink()))

    def send(events: object, headers: object = None) -> object:
        raise RuntimeError("broke on subject user-42")

    relay.send = send  # type: ignore[method-assign,assignment]
    tokens = ServiceTokens(tmp_path / "t.json")
    _, token = tokens.add("svc", ["checkout"])
    event = next(e for e in sample_events() if e.system == "checkout")
    with TestClient(create_app(Gateway(tokens, relay, RateLimit(0)))) as client:  # a raise would fail the test
        answer = client.post("/v1/events", json=event_to_json(event), headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 500 and "RuntimeError" in answer.json()["error"]
    assert answer.headers["Cache-Control"] == "no-store" and answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "RuntimeError" in caplog.text and "user-42" not in caplog.text and "user-42" not in answer.text


def test_with_a_spool_a_batch_keeps_one_subjects_order_when_its_first_event_fails(tmp_path: Path) -> None:
    """GRANTED then WITHDRAWN for one subject in one request, the first delivery failing: the topic keeps the order.

    The failed one is spooled and the next queues behind it (sent straight out, it would overtake it).
    """
    sink = MemorySink(fail_next=1)
    emitter = Emitter(system="checkout", region="CN", sink=sink, settings=Settings(spool_dir=tmp_path / "spool"))
    relay = Relay(emitter)
    at = datetime(2026, 5, 1, tzinfo=UTC)
    common = {"categories": ["user.contact.email"], "purpose": "essential.service", "consent_kind": "GENERAL"}
    granted = emitter.event("CONSENT", subject_id="user-42", consent_status="GRANTED", occurred_at=at, **common)
    withdrawn = emitter.event(
        "CONSENT", subject_id="user-42", consent_status="WITHDRAWN", occurred_at=at + timedelta(seconds=1), **common
    )
    prepare = Preparer(Validator(emitter.taxonomy), emitter.codec)
    relay.send([prepare(to_record(granted)), prepare(to_record(withdrawn))])
    wait_until(lambda: relay.tick() == 0, "the spool resent")
    assert [m.event_id for m in sink.messages] == [granted.event_id, withdrawn.event_id]
