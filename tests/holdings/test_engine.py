"""The holdings engine, alone (no store): its runs expand to exactly the reference's arrivals."""

from __future__ import annotations

from collections import Counter
from dataclasses import astuple
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage.contract.records import Record
from lineage.holdings import Event, HoldingsEngine, Run, event_from_record
from tests import reference
from tests.fixtures import at_minute, examples, histories, micros, nightly_histories


def _engine(records: list[Record]) -> HoldingsEngine:
    engine = HoldingsEngine()
    engine.apply(event_from_record(r) for r in records)
    return engine


@settings(max_examples=examples(300))
@given(histories(), st.integers(0, 35))
def test_runs_expand_to_the_reference_arrivals(records: list[Record], as_of_minute: int) -> None:
    """Chained bulk flows, erasures and splits: the runs' arrivals and ends equal the brute force."""
    as_of = micros(at_minute(as_of_minute)) or 0
    assert set(_engine(records).arrivals(as_of)) == reference.holdings(records, None, as_of)


@settings(max_examples=examples(300))
@given(nightly_histories(), st.integers(-16, 26))
def test_re_exports_extend_runs_and_match_the_reference(records: list[Record], as_of_minute: int) -> None:
    """The same flows re-sent (a cycle, a new year, bulk erasures splitting runs) still equal the brute force."""
    as_of = micros(at_minute(as_of_minute)) or 0
    assert set(_engine(records).arrivals(as_of)) == reference.holdings(records, None, as_of)


# an undo journal that keeps nothing (each rollback rebuilds), a few entries (some do), or every change
_UNDO_LIMITS = st.sampled_from([0, 5, 500_000])


@settings(max_examples=examples(300))
@given(nightly_histories(), st.data())
def test_rollback_and_replay_equals_one_pass(records: list[Record], data: st.DataObject) -> None:
    """Applying a history, rolling back to any time and replaying from it gives the same runs as one pass."""
    events = sorted((event_from_record(r) for r in records), key=lambda e: e.sort_key())
    cut = data.draw(st.sampled_from([e.at for e in events]))
    first = HoldingsEngine()
    first.undo_limit = data.draw(_UNDO_LIMITS)
    first.apply(e for e in events if e.at < cut)
    first.apply(e for e in events if e.at >= cut and data.draw(st.booleans()))  # some of the later ones
    first.rollback(cut)
    first.apply(e for e in events if e.at >= cut)
    assert _canonical(first) == _canonical(_engine(records))


@settings(max_examples=examples(300))
@given(st.one_of(histories(), nightly_histories()), st.data())
def test_rollback_by_the_journal_restores_the_state_at_that_time(records: list[Record], data: st.DataObject) -> None:
    """Rolled back through its undo journal, the engine holds exactly what it held before that time."""
    events = sorted((event_from_record(r) for r in records), key=lambda e: e.sort_key())
    cut = data.draw(st.sampled_from([e.at for e in events]))
    engine = HoldingsEngine()
    engine.apply(e for e in events if e.at < cut)
    before = _canonical(engine)
    engine.apply(e for e in events if e.at >= cut)
    engine.rollback(cut)
    assert _canonical(engine) == before
    assert engine.watermark == cut - 1


def test_a_holders_log_made_after_a_split_is_dropped_by_a_rollback_before_it() -> None:
    """A holder's log made after a bulk erasure split a run holds its +1: rolled back before, it is made again."""

    def event(eid: str, kind: str, minute: int, holder: str, **fields: object) -> Event:
        values: dict[str, object] = {
            "event_id": eid, "event_type": kind, "at": micros(at_minute(minute)) or 0, "scope": "BULK",
            "subject_id": None, "linked": (), "categories": ("user.contact.email",), "holder": holder,
            "holder_role": "controller", "holder_region": "CN", "recipient": None, "recipient_role": None,
            "recipient_region": None, "purpose": "p", "legal_basis": "CONSENT", "source": None, "mechanism": None,
            "retention_days": None, "encrypted": None, "bulk_as_of": None, "erasure_outcome": None,
        }  # fmt: skip
        values.update(fields)
        if kind != "ERASED" and values["recipient"] is not None:
            values["recipient_role"], values["recipient_region"] = "processor", "HK"
        return Event(**values)  # type: ignore[arg-type]

    def at(minute: int) -> int:
        return micros(at_minute(minute)) or 0

    events = [
        event("c1", "COLLECTED", 1, "H0", scope="SUBJECT", subject_id="s"),
        event("f1", "SHARED", 2, "H0", recipient="A", bulk_as_of=at(2)),  # a run at A
        event("f2", "SHARED", 3, "H0", recipient="A", bulk_as_of=at(3)),  # extends it
        event("x1", "ERASED", 4, "A", erasure_outcome="ERASED", bulk_as_of=at(2)),  # splits it: the rest from f2
        event("g1", "SHARED", 5, "A", recipient="B", bulk_as_of=at(5)),  # the first flow from A: A's log made
        event("x2", "ERASED", 6, "A", scope="SUBJECT", subject_id="s", erasure_outcome="ERASED"),  # ends the rest
        event("g2", "SHARED", 7, "A", recipient="B", bulk_as_of=at(7)),  # so B no longer receives s
    ]
    one_pass = HoldingsEngine()
    one_pass.apply(events)
    engine = HoldingsEngine()
    engine.apply(events)
    engine.rollback(at(4))
    engine.apply(e for e in events if e.at >= at(4))
    assert _canonical(engine) == _canonical(one_pass)


@settings(max_examples=examples(200))
@given(st.one_of(histories(), nightly_histories()), st.data())
def test_a_restored_engine_rolls_back_before_its_rows_by_rebuilding(records: list[Record], data: st.DataObject) -> None:
    """The journal starts at a restore: a rollback to before it walks the rows, and the replay equals one pass."""
    events = sorted((event_from_record(r) for r in records), key=lambda e: e.sort_key())
    times = sorted({e.at for e in events})
    restored_at = data.draw(st.sampled_from(times))
    cut = data.draw(st.sampled_from([t for t in times if t <= restored_at]))
    first = HoldingsEngine()
    first.apply(e for e in events if e.at < restored_at)
    again = HoldingsEngine.restore(
        [_copy(r) for r in first.runs()], list(first.flow_events()), list(first.links()), first.watermark
    )
    again.apply(e for e in events if e.at >= restored_at)
    again.rollback(cut)
    again.apply(e for e in events if e.at >= cut)
    assert _canonical(again) == _canonical(_engine(records))


@settings(max_examples=examples(200))
@given(nightly_histories(), st.data())
def test_catch_up_with_the_applied_events_kept_equals_one_pass(records: list[Record], data: st.DataObject) -> None:
    """A late batch whose replay merges the kept applied events with the new ones gives the runs of one pass."""
    events = sorted((event_from_record(r) for r in records), key=lambda e: e.sort_key())
    late = data.draw(st.lists(st.booleans(), min_size=len(events), max_size=len(events)))
    applied = [e for e, held_back in zip(events, late, strict=True) if not held_back]
    new = [e for e, held_back in zip(events, late, strict=True) if held_back]
    engine = HoldingsEngine()
    engine.apply(applied)
    batch, rolled_back_to = engine.catch_up(
        iter(new), lambda since: pytest.fail("the store was read"), kept=lambda at: [e for e in applied if e.at >= at]
    )
    engine.apply(batch, ordered=True)
    assert _canonical(engine) == _canonical(_engine(records))
    assert rolled_back_to == (new[0].at if new and applied and new[0].at <= applied[-1].at else None)


@settings(max_examples=examples(200))
@given(nightly_histories(), st.data())
def test_restore_from_rows_then_continue_equals_one_pass(records: list[Record], data: st.DataObject) -> None:
    """An engine restored from its output rows (a restart) continues exactly like one that never stopped."""
    events = sorted((event_from_record(r) for r in records), key=lambda e: e.sort_key())
    cut = data.draw(st.sampled_from([e.at for e in events]))
    first = HoldingsEngine()
    first.apply(e for e in events if e.at < cut)
    again = HoldingsEngine.restore(
        [_copy(r) for r in first.runs()], list(first.flow_events()), list(first.links()), first.watermark
    )
    again.apply(e for e in events if e.at >= cut)
    assert _canonical(again) == _canonical(_engine(records))


@settings(max_examples=examples(200))
@given(st.one_of(histories(), nightly_histories()), st.data())
def test_an_event_stored_twice_holds_what_it_holds_once(records: list[Record], data: st.DataObject) -> None:
    """Copies of events (delivery is at-least-once), in the same pass or late after a restore, change no run."""
    events = sorted((event_from_record(r) for r in records), key=lambda e: e.sort_key())
    copies = data.draw(st.lists(st.sampled_from(events), max_size=8)) if events else []
    twice = HoldingsEngine()
    twice.apply(events + copies)
    assert _canonical(twice) == _canonical(_engine(records))
    cut = data.draw(st.sampled_from([e.at for e in events])) if events else 0
    first = HoldingsEngine()
    first.apply(e for e in events if e.at < cut)
    again = HoldingsEngine.restore(
        [_copy(r) for r in first.runs()], list(first.flow_events()), list(first.links()), first.watermark
    )
    stored = sorted(events + copies, key=lambda e: e.sort_key())
    batch, _ = again.catch_up(iter(sorted(copies + [e for e in events if e.at >= cut], key=lambda e: e.sort_key())),
                              lambda since: [e for e in stored if e.at >= since])  # fmt: skip
    again.apply(batch, ordered=True)
    assert _canonical(again) == _canonical(_engine(records))


@settings(max_examples=examples(300))
@given(st.one_of(histories(), nightly_histories()), st.data())
def test_a_copy_of_an_event_older_than_the_cut_off_read_at_it_changes_nothing(
    records: list[Record], data: st.DataObject
) -> None:
    """Copies of events from before a retention cut-off, stored after it and read as at it, change no run."""
    events = sorted((event_from_record(r) for r in records), key=lambda e: e.sort_key())
    cut = data.draw(st.sampled_from(sorted({e.at for e in events}))) if events else 0
    older = [e for e in events if e.at < cut]
    erasures = [e for e in older if e.event_type == "ERASED"] or older
    copies = data.draw(st.lists(st.sampled_from(older) | st.sampled_from(erasures), max_size=8)) if older else []
    late = [e._replace(at=cut, clamped_from=e.at) for e in copies]  # as queries/holdings_events.sql reads them
    engine = HoldingsEngine()
    engine.apply(sorted(events + late, key=lambda e: e.sort_key()))
    assert _canonical(engine) == _canonical(_engine(records))


def _event(eid: str, kind: str, minute: int, holder: str = "app", **fields: object) -> Event:
    """An engine event at ``minute``: of subject 's', one category, by ``holder``; ``fields`` changed."""
    values: dict[str, object] = {
        "event_id": eid, "event_type": kind, "at": _at(minute), "scope": "SUBJECT", "subject_id": "s", "linked": (),
        "categories": ("user.contact.email",), "holder": holder, "holder_role": "controller", "holder_region": "CN",
        "recipient": None, "recipient_role": None, "recipient_region": None, "purpose": "p", "legal_basis": "CONSENT",
        "source": None, "mechanism": None, "retention_days": None, "encrypted": None, "bulk_as_of": None,
        "erasure_outcome": None,
    }  # fmt: skip
    if kind == "ERASED":
        values.update(erasure_outcome="ERASED", purpose=None, legal_basis=None)
    values.update(fields)
    if values["recipient"] is not None:
        values["recipient_role"], values["recipient_region"] = "processor", "HK"
    return Event(**values)  # type: ignore[arg-type]


def _at(minute: int) -> int:
    return micros(at_minute(minute)) or 0


def _read_at(cut: int, *events: Event) -> list[Event]:
    """``events`` as stored after a retention cut-off at minute ``cut`` reads them (queries/holdings_events.sql)."""
    return [e._replace(at=_at(cut), clamped_from=e.at) for e in events]


def test_an_erasure_read_at_the_cut_off_ends_what_arrived_by_its_own_time() -> None:
    """A late erasure older than the cut-off ends runs that arrived by its own time, late ones included, no later."""
    engine = HoldingsEngine()
    engine.apply([_event("c10", "COLLECTED", 10), _event("c30", "COLLECTED", 30)])
    engine.apply(
        _read_at(50, _event("c15", "COLLECTED", 15), _event("c25", "COLLECTED", 25), _event("x", "ERASED", 20))
    )
    ended = {r.via: r.ended for r in engine.runs()}
    assert ended == {"c10": _at(50), "c15": _at(50), "c25": None, "c30": None}


def test_a_copy_of_a_retired_erasure_leaves_a_flow_run_starting_at_the_cut_off_held() -> None:
    """A bulk flow at the cut-off brings the person back to B: a copy of B's retired erasure read there ends nothing."""
    engine = HoldingsEngine()
    flow = {"scope": "BULK", "subject_id": None, "recipient": "B"}
    erasure = _event("x", "ERASED", 20, "B")
    engine.apply([_event("c", "COLLECTED", 5, "A"), _event("f10", "SHARED", 10, "A", bulk_as_of=_at(10), **flow),
                  erasure])  # fmt: skip
    engine.apply(sorted(_read_at(50, erasure) + [_event("f50", "SHARED", 50, "A", bulk_as_of=_at(50), **flow)],
                        key=lambda e: e.sort_key()))  # fmt: skip
    at_b = sorted((r.arrived, r.ended) for r in engine.runs() if r.holder == "B")
    assert at_b == [(_at(10), _at(20)), (_at(50), None)]


def test_copies_read_at_a_second_cut_off_leave_a_run_a_first_one_brought_late_held() -> None:
    """A collection read late at one cut-off, then it and an older erasure replayed after the next: still held."""
    erasure, late = _event("x", "ERASED", 20), _event("c15", "COLLECTED", 15)
    other = [_event("t40", "COLLECTED", 40, subject_id="t"), _event("t60", "COLLECTED", 60, subject_id="t")]
    engine = HoldingsEngine()
    engine.apply([_event("c10", "COLLECTED", 10), erasure, other[0]])  # retention at minute 30 retires the first two
    engine.rollback(_at(30))
    engine.apply(_read_at(30, late) + [other[0]])  # stored after it: held since the cut-off
    engine.apply([other[1]])  # retention at minute 50 retires c15 too; an archive of all three is replayed
    engine.rollback(_at(50))
    engine.apply(sorted(_read_at(50, late, erasure) + [other[1]], key=lambda e: e.sort_key()))
    assert sorted((r.via, r.ended) for r in engine.runs() if r.subject == "s") == [("c10", _at(20)), ("c15", None)]


def _copy(run: Run) -> Run:
    return Run(**{name: getattr(run, name) for name in Run.__slots__})  # type: ignore[attr-defined]


def _canonical(engine: HoldingsEngine) -> tuple[list[tuple[object, ...]], list[object], list[object], list[object]]:
    runs = sorted(
        (r.subject, r.category, r.holder, r.arrived, r.via, r.flow or "", r.first_seq or -1,
         -2 if r.last_seq is None else r.last_seq, r.ended or -1, r.ended_by or "", r.prov)
        for r in engine.runs()
    )  # fmt: skip
    return runs, sorted(engine.flow_events()), sorted(engine.links()), sorted(engine.persons())


def _by_part(engine: HoldingsEngine) -> tuple[dict[str, list[tuple[object, ...]]], list[object], list[object]]:
    """The engine's output as a store partitions it: runs by subject, the flows, the links and person keys."""
    runs: dict[str, list[tuple[object, ...]]] = {}
    for r in _canonical(engine)[0]:
        runs.setdefault(str(r[0]), []).append(r)
    _, flows, links, persons = _canonical(engine)
    return runs, flows, [links, persons]


@settings(max_examples=examples(300))
@given(st.one_of(histories(), nightly_histories()), st.data())
def test_changes_name_every_part_whose_rows_differ(records: list[Record], data: st.DataObject) -> None:
    """After a second part of events (late ones rolled back and replayed), ``take_changes`` names all that differs."""
    if data.draw(st.booleans()):  # else in the order drawn: the second part is often late
        records = sorted(records, key=lambda r: r["occurred_at"])
    split = data.draw(st.integers(0, len(records)))
    first = sorted((event_from_record(r) for r in records[:split]), key=lambda e: e.sort_key())
    second = [event_from_record(r) for r in records[split:]]
    engine = HoldingsEngine()
    engine.undo_limit = data.draw(_UNDO_LIMITS)
    engine.apply(first)
    engine.take_changes()
    before, rows_before = _by_part(engine), _rows_by_subject(engine)
    if second and engine.watermark is not None and min(e.at for e in second) <= engine.watermark:
        late = min(e.at for e in second)  # what the maintainer does: roll back, replay all from then
        engine.rollback(late)
        engine.apply(e for e in [*first, *second] if e.at >= late)
    else:
        engine.apply(second)
    changes = engine.take_changes()
    after = _by_part(engine)
    differ = {s for s in before[0].keys() | after[0].keys() if before[0].get(s) != after[0].get(s)}
    assert differ <= changes.subjects
    assert changes.flows or before[1] == after[1]
    assert changes.links or before[2] == after[2]
    # a subject only added to keeps every row it had: those and the runs added are its rows now
    rows_after = _rows_by_subject(engine)
    added: dict[str, Counter[tuple[Any, ...]]] = {}
    for run in changes.added:
        added.setdefault(run.subject, Counter())[astuple(run)] += 1
    assert changes.rewritten | added.keys() == changes.subjects
    for subject, runs in added.items():
        assert rows_before.get(subject, Counter()) + runs == rows_after[subject]
    assert not engine.take_changes()  # taken: the next call starts afresh


def _rows_by_subject(engine: HoldingsEngine) -> dict[str, Counter[tuple[Any, ...]]]:
    """Each subject's runs, as field tuples counted."""
    out: dict[str, Counter[tuple[Any, ...]]] = {}
    for run in engine.runs():
        out.setdefault(run.subject, Counter())[astuple(run)] += 1
    return out
