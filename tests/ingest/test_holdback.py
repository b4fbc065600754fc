"""A maintainer's holdback: no partition applied ahead of another in event time, exactly once, readers consistent.

Partitions are stored at different speeds. Applied as stored, an event of a slower partition is
late against a faster one's and rolls the engine back; held back past the low watermark, the
faster partition's events wait for the next refresh instead (``HoldingsMaintainer.holdback``).
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lineage import Codec, default_taxonomy
from lineage.answers import access_request
from lineage.contract.records import Record, make_record
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation
from lineage.store.holdings import event_offsets, load_holdings, read_rows, read_state
from tests.fixtures import PARTY, at_minute, examples, histories, nightly_histories

TAXONOMY = default_taxonomy()
CODEC = Codec()


def _collected(subject: str, minute: int) -> Record:
    return make_record("COLLECTED", system="app", system_region="CN", subject_id=subject, holder=PARTY["app"],
                       purpose="essential.service", legal_basis="CONTRACT", categories=["user.contact"],
                       occurred_at=at_minute(minute), event_id=str(uuid.uuid4()))  # fmt: skip


def _erased(subject: str, minute: int) -> Record:
    return make_record("ERASED", system="app", system_region="CN", subject_id=subject, holder=PARTY["app"],
                       categories=["user.contact"], erasure_outcome="ERASED", hold_reason="a test",
                       occurred_at=at_minute(minute), event_id=str(uuid.uuid4()))  # fmt: skip


def _store(ingestor: Ingestor, parts: dict[int, list[Record]], first: dict[int, int]) -> None:
    """Store each partition's records after its ``first`` offsets (moved on), in one commit."""
    for partition, records in parts.items():
        for record in records:
            assert ingestor.add(partition, first.get(partition, 0), CODEC.encode_record(record)) is None
            first[partition] = first.get(partition, 0) + 1
    ingestor.flush()


def _holdings(location: StoreLocation) -> list[str]:
    table = load_holdings(location)
    snapshot = table.current_snapshot()
    assert snapshot is not None
    return sorted(map(str, read_rows(location, table, snapshot.snapshot_id).to_pylist()))


def _rebuilt(location: StoreLocation) -> list[str]:
    HoldingsMaintainer(location).refresh(rebuild=True)
    return _holdings(location)


def _held_back(folder: Path) -> tuple[StoreLocation, Ingestor, HoldingsMaintainer, dict[int, int]]:
    """Partition 0 stored to minute 20, partition 1 to minute 15; one refresh holding back minute 15 on (7 events)."""
    location = StoreLocation.embedded(folder)
    ingestor, offsets = Ingestor(location, "events", taxonomy=TAXONOMY), {}
    _store(ingestor, {0: [_collected(f"a{m}", m) for m in range(10, 21)],
                      1: [_collected(f"b{m}", m) for m in range(10, 16)]}, offsets)  # fmt: skip
    maintainer = HoldingsMaintainer(location)
    maintainer.holdback = True
    done = maintainer.refresh()
    assert (done.events, done.held, done.rolled_back_to) == (10, 7, None)
    assert read_state(load_holdings(location)).applied == {"events": {0: 4, 1: 4}}
    return location, ingestor, maintainer, offsets


def test_the_low_watermark_bounds_each_partition_with_new_events_at_or_past_it(tmp_path: Path) -> None:
    """``Store.holdback``: the first new offset at or past the earliest of the partitions' latest new event times."""
    location = StoreLocation.embedded(tmp_path)
    ingestor, offsets = Ingestor(location, "events", taxonomy=TAXONOMY), {}
    _store(ingestor, {0: [_collected("a", m) for m in (1, 5, 9, 3)], 1: [_collected("b", m) for m in (2, 4)],
                      2: [_collected("c", m) for m in (6, 7)]}, offsets)  # fmt: skip
    store = Store(location, holdings=False)
    assert store.holdback({}, floor=None) == {"events": {0: 1, 1: 1, 2: 0}}  # the watermark: minute 4
    # partition 1 applied: minute 7 is the earliest latest
    assert store.holdback({"events": {1: 1}}, floor=None) == {"events": {0: 2, 2: 1}}
    assert store.holdback({"events": {0: 3, 1: 1}}, floor=None) == {}  # new events in one partition alone
    # partition 0 due through minute 5: the watermark (4) is behind it, so only what is past minute 5 waits
    assert store.holdback({}, floor=None, through={"events": {0: 1}}) == {"events": {0: 2, 2: 0}}


def test_a_partition_ahead_in_event_time_waits_and_the_slower_one_then_makes_no_late_event(tmp_path: Path) -> None:
    """The faster partition's later events are held back; the slower one's next events are then not late."""
    location, ingestor, maintainer, offsets = _held_back(tmp_path)
    _store(ingestor, {1: [_collected(f"b{m}", m) for m in range(16, 21)]}, offsets)
    done = maintainer.refresh()
    assert (done.events, done.rolled_back_to, done.held) == (12, None, 0)
    assert read_state(load_holdings(location)).applied == event_offsets(location.load())
    assert _holdings(location) == _rebuilt(location)


def test_without_the_holdback_the_same_events_make_a_late_event(tmp_path: Path) -> None:
    """The case above with a maintainer that applies every event: the slower partition's events roll it back."""
    location = StoreLocation.embedded(tmp_path)
    ingestor, offsets = Ingestor(location, "events", taxonomy=TAXONOMY), {}
    _store(ingestor, {0: [_collected(f"a{m}", m) for m in range(10, 21)],
                      1: [_collected(f"b{m}", m) for m in range(10, 16)]}, offsets)  # fmt: skip
    maintainer = HoldingsMaintainer(location)
    assert maintainer.refresh().held == 0
    _store(ingestor, {1: [_collected(f"b{m}", m) for m in range(16, 21)]}, offsets)
    assert maintainer.refresh().rolled_back_to is not None


def test_what_a_refresh_held_back_the_next_applies_even_behind_a_slower_partition(tmp_path: Path) -> None:
    """A held-back event waits one refresh at most: the next applies it though the slower partition is still behind."""
    location, ingestor, maintainer, offsets = _held_back(tmp_path)
    _store(ingestor, {1: [_collected("b16", 16)]}, offsets)  # partition 1 reaches minute 16 only
    done = maintainer.refresh()
    assert done.held == 0 and read_state(load_holdings(location)).applied == event_offsets(location.load())
    assert _holdings(location) == _rebuilt(location)


def test_a_reader_while_events_are_held_back_reads_only_the_events_the_holdings_reflect(tmp_path: Path) -> None:
    """The newest holdings' reader cuts its events to the offsets applied, pinned by id too, and later again."""
    location, ingestor, maintainer, offsets = _held_back(tmp_path)
    store = Store(location)
    state = read_state(load_holdings(location))
    assert state.held
    assert (store.count(), store.behind) == (10, 7)  # minutes 10-14 of both partitions; 15 on held back
    minutes = {r["subject_id"] for r in store.sql("SELECT subject_id FROM events")}
    assert minutes == {f"{p}{m}" for p in "ab" for m in range(10, 15)}
    # by id, as a command pins the snapshot its answer is stamped with: the same stored holdings, the same cut
    named = Store(location, snapshot=state.source)
    assert (named.count(), named.holdings_snapshot_id) == (10, state.snapshot_id)
    _store(ingestor, {1: [_collected(f"b{m}", m) for m in range(16, 21)]}, offsets)
    maintainer.refresh()  # the holdings move on to a newer events snapshot: that answer can be given again
    again = Store(location, snapshot=state.source)
    assert (again.count(), again.holdings_snapshot_id) == (10, state.snapshot_id)
    assert Store(location).count() == 22


def test_held_events_that_change_no_holding_are_read_by_a_kept_reader_and_by_id_alike_once_applied(
    tmp_path: Path,
) -> None:
    """Held erasures of no holding: a kept reader, and the events snapshot by id later, read them once applied."""
    location = StoreLocation.embedded(tmp_path)
    ingestor, offsets = Ingestor(location, "events", taxonomy=TAXONOMY), {}
    _store(ingestor, {0: [_collected("a", 10), _erased("ghost", 20)], 1: [_collected("b", 10), _erased("ghost", 15)]},
           offsets)  # fmt: skip
    maintainer = HoldingsMaintainer(location)
    maintainer.holdback = True
    assert maintainer.refresh().held == 2
    source = read_state(load_holdings(location)).source
    store = Store(location)  # kept, as the console keeps one: its answers reuse a connection while nothing moved
    assert access_request(store, "ghost", TAXONOMY).erasures == []
    events_snapshot = location.load().current_snapshot()
    assert maintainer.refresh().held == 0  # the erasures applied: no row changes, no new events
    assert location.load().current_snapshot() == events_snapshot
    assert len(access_request(store, "ghost", TAXONOMY).erasures) == 2 and store.behind == 0
    _store(ingestor, {0: [_collected("c", 30)]}, offsets)
    maintainer.refresh()
    maintainer.refresh()  # moved on: the events snapshot by id still reads the holdings' last word on it
    named = Store(location, snapshot=source)
    assert (len(access_request(named, "ghost", TAXONOMY).erasures), named.behind) == (2, 0)


def test_a_held_commit_that_changes_no_row_is_found_by_id_with_its_cut_after_the_maintainer_moves_on(
    tmp_path: Path,
) -> None:
    """Every new event waits (ties at the watermark), so no row changes: by id its events snapshot keeps the cut."""
    location = StoreLocation.embedded(tmp_path)
    ingestor, offsets = Ingestor(location, "events", taxonomy=TAXONOMY), {}
    _store(ingestor, {0: [_collected("a", 5)], 1: [_collected("b", 5)]}, offsets)
    maintainer = HoldingsMaintainer(location)
    maintainer.holdback = True
    maintainer.refresh()
    maintainer.refresh()  # both applied
    _store(ingestor, {0: [_collected("a2", 10)], 1: [_collected("b2", 10)]}, offsets)
    assert maintainer.refresh().events == 0
    state = read_state(load_holdings(location))
    assert state.held
    pinned = Store(location, snapshot=state.source)
    assert (pinned.count(), pinned.holdings_snapshot_id, pinned.behind) == (2, state.snapshot_id, 2)
    _store(ingestor, {0: [_collected("a3", 20)]}, offsets)
    maintainer.refresh()
    again = Store(location, snapshot=state.source)
    assert (again.count(), again.holdings_snapshot_id, again.behind) == (2, state.snapshot_id, 2)


def test_a_maintainer_started_after_a_holdback_applies_what_was_held_exactly_once(tmp_path: Path) -> None:
    """A new maintainer (a restart) takes the held-back events as new, holds minute 20 back once: as rebuilt."""
    location, ingestor, _, offsets = _held_back(tmp_path)
    _store(ingestor, {1: [_collected(f"b{m}", m) for m in range(16, 21)]}, offsets)
    again = HoldingsMaintainer(location)
    again.holdback = True
    first, second = again.refresh(), again.refresh()
    assert (first.events, first.held, first.rolled_back_to) == (10, 2, None)
    assert (second.events, second.held, second.rolled_back_to) == (2, 0, None)
    assert read_state(load_holdings(location)).applied == event_offsets(location.load())
    assert _holdings(location) == _rebuilt(location)


@settings(max_examples=examples(30))
@given(data=st.data())
def test_histories_over_partitions_with_a_holdback_equal_a_rebuild(data: st.DataObject) -> None:
    """Histories over three partitions, stored in parts, replays from memory or the store, a restart: as rebuilt."""
    records = data.draw(st.one_of(histories(), nightly_histories()))
    partition_of = data.draw(st.lists(st.integers(0, 2), min_size=len(records), max_size=len(records)))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(records)), max_size=3)))
    restart_at = data.draw(st.integers(0, len(cuts) + 1))
    kept = data.draw(st.sampled_from([0, 100_000]))  # 0: a late event's replay reads the store
    with tempfile.TemporaryDirectory() as folder:
        location = StoreLocation.embedded(Path(folder))
        ingestor, offsets = Ingestor(location, "events", taxonomy=TAXONOMY), {}
        maintainer = HoldingsMaintainer(location)
        maintainer.holdback, maintainer.recent_events = True, kept
        for n, (lo, hi) in enumerate(zip([0, *cuts], [*cuts, len(records)], strict=True)):
            parts: dict[int, list[Record]] = {}
            for i in range(lo, hi):
                parts.setdefault(partition_of[i], []).append(records[i])
            if not parts:
                continue
            _store(ingestor, parts, offsets)
            if n == restart_at:
                maintainer = HoldingsMaintainer(location)
                maintainer.holdback, maintainer.recent_events = True, kept
            maintainer.refresh()
            state = read_state(load_holdings(location))
            applied = state.applied.get("events", {})
            reflected = sum(min(applied.get(p, -1) + 1, stored) for p, stored in offsets.items())
            assert Store(location).count() == reflected  # the reader's events: those the holdings reflect
            # and the holdings applied those alone: none held back went into the engine (a replay's included)
            upto = {"events": {p: applied.get(p, -1) + 1 for p in offsets}}
            events = Store(location, holdings=False).engine_events({}, None, floor=None, bounds=upto)
            assert state.watermark == max((e.at for e in events), default=None)
        maintainer.refresh()  # the last refresh's held-back events: applied by the next, whatever it finds
        assert read_state(load_holdings(location)).applied == event_offsets(location.load())
        assert _holdings(location) == _rebuilt(location)


def test_events_all_at_the_watermark_wait_one_refresh_and_a_reader_meanwhile_reads_none(tmp_path: Path) -> None:
    """Two partitions' events all at one time wait (a later one there could tie); the next refresh applies them."""
    location = StoreLocation.embedded(tmp_path)
    ingestor, offsets = Ingestor(location, "events", taxonomy=TAXONOMY), {}
    _store(ingestor, {0: [_collected("a", 10)], 1: [_collected("b", 10)]}, offsets)
    maintainer = HoldingsMaintainer(location)
    maintainer.holdback = True
    assert (maintainer.refresh().events, read_state(load_holdings(location)).applied) == (0, {})
    store = Store(location)
    assert (store.count(), store.behind) == (0, 2)
    done = maintainer.refresh()
    assert (done.events, done.held, Store(location).count()) == (2, 0, 2)
    assert _holdings(location) == _rebuilt(location)
