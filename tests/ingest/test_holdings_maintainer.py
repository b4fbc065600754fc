"""The holdings maintainer exactly once: kill -9, racing maintainers, late events, a lagging reader.

Real processes, a real broker and real stores: the maintainer (``python -m consumers.holdings``)
runs beside an ingest consumer and is killed -9 at random moments; at the end its table must equal
a rebuild from scratch, row for row, and the answers must not tell them apart.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers import stopping
from lineage import Codec, Settings, default_taxonomy
from lineage.answers import access_request, breach_impact, retention_register
from lineage.contract.records import Record, make_record
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation
from lineage.store import holdings as store_holdings
from lineage.store.engine import Scan
from lineage.store.forget import forget_rows
from lineage.store.holdings import load_holdings, read_rows, read_state, try_load_holdings
from lineage.store.retention import retire_events
from lineage.testing import MemorySink
from lineage.transport.kafka import KafkaEventSink, create_topics
from lineage.world.organisations import build
from lineage.world.sim import WorldSize, emit
from tests.fixtures import PARTY, at_minute, examples, histories, micros, nightly_histories, private_file
from tests.services import Postgres, SeaweedS3

pytestmark = pytest.mark.integration

REPO = Path(__file__).parents[2]
PARTITIONS = 4
SUBJECTS = 420  # per organisation: 51,478 events of the five seed organisations over a year, 1,618 bulk
KILLS = 6
TAXONOMY = default_taxonomy()


@functools.cache
def _world(subjects: int) -> tuple[tuple[tuple[bytes, bytes], ...], tuple[str, ...], tuple[str, ...]]:
    """The simulated organisations' events encoded (key, value) in time order; a few people; the holders."""
    plans, _ = build(WorldSize(subjects=subjects, days=365), TAXONOMY)
    sink = MemorySink()
    emit(plans, sink, TAXONOMY)
    people = tuple(p.adults[i] for p in plans for i in (0, len(p.adults) // 2))
    holders = tuple(sorted({e.fields["recipient"].name for p in plans for e in p.events if "recipient" in e.fields}))
    return tuple((m.key or b"", m.value) for m in sink.messages), people, holders


def _rows(location: StoreLocation) -> list[tuple[Any, ...]]:
    """Every row of the holdings table's current snapshot, sorted (None first in each column)."""
    table = load_holdings(location)
    snapshot = table.current_snapshot()
    assert snapshot is not None, "no holdings were written"
    rows = read_rows(location, table, snapshot.snapshot_id).to_pylist()
    return sorted((tuple(r.values()) for r in rows), key=lambda r: tuple((v is not None, str(v)) for v in r))


def _answers(location: StoreLocation, people: tuple[str, ...], holders: tuple[str, ...]) -> dict[str, Any]:
    """Access for a few people, a breach at two holders over the last quarter, and the retention register."""
    store = Store(location)
    end = WorldSize(subjects=1, days=1).end
    return {
        "access": [access_request(store, p, TAXONOMY, end) for p in people],
        "breach": breach_impact(store, list(holders[:2]), end - timedelta(days=90), end, TAXONOMY, aware_at=end),
        "retention": retention_register(store, end),
        "events_snapshot": store.snapshot_id,
    }


def _check_equals_rebuild(location: StoreLocation, people: tuple[str, ...], holders: tuple[str, ...]) -> int:
    """The table as maintained equals a rebuild from scratch, row for row, and answers the same; its row count."""
    kept, answers = _rows(location), _answers(location, people, holders)
    rebuilt = HoldingsMaintainer(location).refresh(rebuild=True)
    assert rebuilt.snapshot is not None and rebuilt.rolled_back_to is None
    fresh = _rows(location)
    assert len(kept) == len(fresh), (len(kept), len(fresh))
    assert kept == fresh, next((a, b) for a, b in zip(kept, fresh, strict=True) if a != b)
    assert _answers(location, people, holders) == answers
    return len(kept)


# --- processes ----------------------------------------------------------------------------------------


@dataclass
class Shape:
    """A store: what a process is told by its environment (secrets too: never printed), and its location."""

    env: dict[str, str] = field(repr=False)
    location: StoreLocation


def _embedded(folder: Path) -> Shape:
    return Shape({"LINEAGE_STORE_DIR": str(folder)}, StoreLocation.embedded(folder))


def _shared(postgres: Postgres, s3: SeaweedS3, secrets_dir: Path) -> Shape:
    """A fresh namespace in the catalog and prefix in the bucket; the password in a 0600 file."""
    namespace = f"h_{uuid.uuid4().hex}"
    env = {
        "LINEAGE_CATALOG_URI": postgres.sqlalchemy_uri(),
        "LINEAGE_CATALOG_PASSWORD_FILE": str(private_file(secrets_dir / "catalog-password", postgres.password)),
        "LINEAGE_NAMESPACE": namespace,
        "LINEAGE_WAREHOUSE": f"s3://{s3.bucket}/{namespace}",
        "LINEAGE_S3_ENDPOINT": s3.endpoint,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }
    return Shape(env, StoreLocation.from_settings(Settings.from_env(env), secrets_dir / "unused"))


@dataclass
class Procs:
    """Processes started by a test, each with its own log; all killed at the end, pass or fail."""

    root: Path
    base_env: dict[str, str] = field(repr=False)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        """Start ``python argv`` as ``name``, appending to its log."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LINEAGE_", "AWS_"))}
        env.update(PYTHONPATH=str(REPO), **self.base_env)
        fd = os.open(self.root / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            proc = stopping.spawn(
                [sys.executable, *argv], cwd=self.root, env=env, stdin=subprocess.DEVNULL, stdout=fd,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        finally:
            os.close(fd)
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        """Its log so far."""
        return (self.root / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Kill whatever still runs."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[list[Procs]]:
    """Where a test keeps its processes, so that every one is killed at the end."""
    kept: list[Procs] = []
    yield kept
    for p in kept:
        p.stop()


def _send(settings: Settings, messages: tuple[tuple[bytes, bytes], ...], chunks: int, pause_s: float) -> None:
    """Send the messages in ``chunks`` parts ``pause_s`` apart (a producer thread's work)."""
    sink = KafkaEventSink(settings)
    size = -(-len(messages) // chunks)
    for start in range(0, len(messages), size):
        for i, (key, value) in enumerate(messages[start : start + size], start):
            sink.send(settings.topic, key, value, f"m{i}")
        sink.flush(120)
        time.sleep(pause_s)
    sink.close(30)
    assert sink.failures() == []


def _holdings_commits(location: StoreLocation) -> str:
    """Which refresh commit the holdings table is at: every refresh that commits changes its metadata file.

    (A refresh whose events change no holding records the offsets without a new snapshot.) A table
    only created, by a maintainer killed before its first commit, is no commit: "" as before it.
    """
    table = try_load_holdings(location)
    return "" if table is None or read_state(table).source is None else table.metadata_location


def _kill_test(kafka_bootstrap: str, shape: Shape, root: Path, kept: list[Procs], seed: int) -> None:
    messages, people, holders = _world(SUBJECTS)
    topic = f"hm.{uuid.uuid4().hex[:12]}"
    kafka = Settings(bootstrap_servers=kafka_bootstrap, topic=topic, dead_letter_topic=topic + ".dlq")
    create_topics(kafka, [kafka.topic, kafka.dead_letter_topic], partitions=PARTITIONS)
    env = {"LINEAGE_BOOTSTRAP_SERVERS": kafka_bootstrap, "LINEAGE_TOPIC": topic,
           "LINEAGE_DEAD_LETTER_TOPIC": topic + ".dlq", "LINEAGE_GROUP_ID": topic + ".g", **shape.env}  # fmt: skip
    p = Procs(root, env)
    kept.append(p)
    started = time.monotonic()
    producer = threading.Thread(target=_send, args=(kafka, messages, 20, 2.5))  # about a minute
    producer.start()
    consumer_argv = ["-m", "consumers.ingest", "--no-holdings", "--commit-interval", "1", "--exit-when-idle", "10"]
    consumer = p.start("consumer", consumer_argv)
    maintainer_argv = ["-m", "consumers.holdings", "--interval", "0.2"]
    p.start("maintainer", maintainer_argv)
    rng = random.Random(seed)
    kills: list[str] = []
    seen_commits: set[str] = set()  # the refresh commits an "after-commit" kill waited for
    while len(kills) < KILLS or consumer.poll() is None:
        assert len(kills) < 40, "the consumer never finished"
        # right after one of its commits (between commits, or in the next read) while events still
        # come: once the consumer is done and the maintainer caught up, no commit is left to wait for
        if rng.random() < 0.5 and consumer.poll() is None:
            before = _holdings_commits(shape.location)
            deadline = time.monotonic() + 120
            kind = "after-commit"
            while _holdings_commits(shape.location) == before:
                if consumer.poll() is not None:  # it finished meanwhile: nothing new may be left to commit
                    kind = "anywhere"
                    break
                assert time.monotonic() < deadline, f"no holdings commit in 120 s:\n{p.log('maintainer')[-3000:]}"
                time.sleep(0.02)
            if kind == "after-commit":
                seen_commits.add(_holdings_commits(shape.location))
            time.sleep(rng.uniform(0.0, 0.3))
        else:  # anywhere: importing, reading the table back, applying, writing, committing
            time.sleep(rng.uniform(0.3, 8.0))
            kind = "anywhere"
        proc = p.procs["maintainer"]
        assert proc.poll() is None, f"the maintainer exited on its own:\n{p.log('maintainer')[-3000:]}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        kills.append(kind)
        p.start("maintainer", maintainer_argv)
    producer.join(300)
    assert not producer.is_alive(), "the producer did not finish in 300 s"
    assert consumer.wait(300) == 0, p.log("consumer")[-3000:]
    if _stored_count(shape.location) < len(messages):  # it went idle while a loaded producer paused: read the rest
        assert p.start("consumer", consumer_argv).wait(300) == 0, p.log("consumer")[-3000:]
    # the last maintainer catches up, then stops cleanly
    deadline = time.monotonic() + 300
    while (state := read_state(load_holdings(shape.location))).applied != _stored(shape.location):
        assert time.monotonic() < deadline, "the maintainer did not catch up in 300 s"
        assert p.procs["maintainer"].poll() is None, p.log("maintainer")[-3000:]
        time.sleep(0.5)
    # however recently it started: spawned with the stop signals held, it stops cleanly from its first instant
    p.procs["maintainer"].send_signal(signal.SIGTERM)
    assert p.procs["maintainer"].wait(60) == 0, p.log("maintainer")[-3000:]
    log = p.log("maintainer")
    assert "Traceback" not in log, log[-3000:]
    # each "after-commit" kill came right after a refresh commit of its own (not after a log line: a
    # loaded machine can run the kill before the maintainer writes the line that follows its commit)
    assert len(seen_commits) == kills.count("after-commit") > 0, (seen_commits, kills)
    commits = log.count("INFO lineage.ingest.holdings holdings snapshot ")  # refreshes that also logged it
    stored = Store(shape.location, holdings=False).count()
    assert stored == len(messages)
    rows = _check_equals_rebuild(shape.location, people, holders)
    assert state.source is not None
    print(
        f"\n[holdings kill -9 {shape.location.describe()}] events={stored} rows={rows} kills={kills} "
        f"holdings_commits={commits} late_replays={log.count('a late event')} "
        f"seconds={time.monotonic() - started:.0f}"
    )


def _stored_count(location: StoreLocation) -> int:
    """How many events the store holds (0 before the first commit)."""
    store = Store(location, holdings=False)
    return store.count() if store.holds_events() else 0


def _stored(location: StoreLocation) -> dict[str, dict[int, int]]:
    from lineage.store.holdings import event_offsets

    return event_offsets(location.load())


def test_a_maintainer_killed_at_random_beside_a_consumer_keeps_holdings_equal_to_a_rebuild(
    kafka_bootstrap: str, tmp_path: Path, procs: list[Procs]
) -> None:
    """Embedded store, ~51,000 simulated events: the maintainer killed -9 6+ times, some right after a commit."""
    _kill_test(kafka_bootstrap, _embedded(tmp_path / "store"), tmp_path, procs, seed=21)


def test_a_maintainer_killed_at_random_on_postgres_and_s3_keeps_holdings_equal_to_a_rebuild(
    kafka_bootstrap: str, postgres: Postgres, s3: SeaweedS3, tmp_path: Path, procs: list[Procs]
) -> None:
    """PostgreSQL catalog + S3 warehouse: the same kills, the same equality with a rebuild and the same answers."""
    _kill_test(kafka_bootstrap, _shared(postgres, s3, tmp_path), tmp_path, procs, seed=22)


# --- in one process -----------------------------------------------------------------------------------


class _Counted(logging.Handler):
    """Counts the log records whose message contains ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.INFO)
        self.text, self.n = text, 0

    def emit(self, record: logging.LogRecord) -> None:
        self.n += self.text in record.getMessage()


def test_two_maintainers_racing_while_events_arrive_end_equal_to_a_rebuild(tmp_path: Path) -> None:
    """Two maintainers refresh in a loop while a writer stores events on two partitions: no error but lost races."""
    messages, people, holders = _world(60)
    location = StoreLocation.embedded(tmp_path / "store")
    ingestor = Ingestor(location, "events", taxonomy=TAXONOMY)
    lost = _Counted("lost a race")
    logger = logging.getLogger("lineage.ingest.holdings")
    logger.addHandler(lost)
    logger.setLevel(logging.INFO)
    done, errors = threading.Event(), []
    refreshes = [0, 0]

    def maintain(i: int) -> None:
        m = HoldingsMaintainer(location)
        try:
            while not done.is_set():
                if Store(location).holds_events():
                    m.refresh()
                    refreshes[i] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=maintain, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    try:
        # partition 1 runs a chunk behind partition 0: what it stores is often late for the holdings
        halves, chunk = (messages[0::2], messages[1::2]), 1000
        for k in range(-(-len(halves[0]) // chunk) + 1):
            for part, index in ((0, k), (1, k - 1)):
                for offset in range(max(0, index) * chunk, min((index + 1) * chunk, len(halves[part]))):
                    assert ingestor.add(part, offset, halves[part][offset][1]) is None
            ingestor.flush()
            time.sleep(0.3)
        ingestor.flush()
    finally:
        done.set()
        for t in threads:
            t.join(300)
        logger.removeHandler(lost)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    HoldingsMaintainer(location).refresh()
    assert Store(location, holdings=False).count() == len(messages)
    rows = _check_equals_rebuild(location, people, holders)
    print(f"\n[racing maintainers] events={len(messages)} rows={rows} refreshes={refreshes} lost_races={lost.n}")


def _late_case(records: list[Record], split: int) -> None:
    """Store ``records[:split]``, refresh, store the rest, refresh: equal to a rebuild; rolled back iff late."""
    first, second = records[:split], records[split:]
    codec = Codec()
    with tempfile.TemporaryDirectory() as folder:
        location = StoreLocation.embedded(Path(folder))
        ingestor = Ingestor(location, "events", taxonomy=TAXONOMY)
        for offset, r in enumerate(first):
            assert ingestor.add(0, offset, codec.encode_record(r)) is None
        ingestor.flush()
        maintainer = HoldingsMaintainer(location)
        maintainer.refresh()
        for offset, r in enumerate(second, len(first)):
            assert ingestor.add(0, offset, codec.encode_record(r)) is None
        ingestor.flush()
        done = maintainer.refresh()
        latest = max(r["occurred_at"] for r in first)  # microseconds in a record
        earliest = min(r["occurred_at"] for r in second)
        if earliest <= latest:
            assert done.rolled_back_to == earliest
        else:
            assert done.rolled_back_to is None
        kept = _rows(location)
        HoldingsMaintainer(location).refresh(rebuild=True)
        assert kept == _rows(location)


def _store_part(ingestor: Ingestor, records: list[Record], first: int) -> None:
    codec = Codec()
    for offset, r in enumerate(records, first):
        assert ingestor.add(0, offset, codec.encode_record(r)) is None
    ingestor.flush()


def _replays_read(calls: list[int | None]) -> int:
    """How many replays after a late event read the store (``Scan.events`` asked for events since a time)."""
    return sum(1 for since in calls if since is not None)


@settings(max_examples=examples(24))
@given(data=st.data())
def test_late_events_replayed_from_the_events_kept_in_memory_equal_a_rebuild(data: st.DataObject) -> None:
    """Histories stored in three parts, the maintainer keeping 0 to all its last events: incremental equals rebuilt."""
    records = data.draw(histories().filter(lambda r: len(r) >= 3))
    cuts = sorted(data.draw(st.lists(st.integers(1, len(records) - 1), min_size=2, max_size=2, unique=True)))
    limit = data.draw(st.sampled_from([0, 1, 3, 100_000]))
    calls: list[int | None] = []
    events = Scan.events

    def spied(scan: Scan, applied: dict[str, dict[int, int]], since: int | None, **kwargs: Any) -> Any:
        calls.append(since)
        return events(scan, applied, since, **kwargs)

    with tempfile.TemporaryDirectory() as folder, mock.patch.object(Scan, "events", spied):
        location = StoreLocation.embedded(Path(folder))
        ingestor = Ingestor(location, "events", taxonomy=TAXONOMY)
        maintainer = HoldingsMaintainer(location)
        maintainer.recent_events = limit
        late = 0
        for lo, hi in zip([0, *cuts], [*cuts, len(records)], strict=True):
            _store_part(ingestor, records[lo:hi], lo)
            late += maintainer.refresh().rolled_back_to is not None
        if limit == 100_000:  # all kept (these histories are short): no replay reads the store
            assert _replays_read(calls) == 0
        elif limit == 0:  # none kept: every one does
            assert _replays_read(calls) == late
        kept = _rows(location)
    with tempfile.TemporaryDirectory() as folder:
        location = StoreLocation.embedded(Path(folder))
        _store_part(Ingestor(location, "events", taxonomy=TAXONOMY), records, 0)
        HoldingsMaintainer(location).refresh()
        assert kept == _rows(location)


class _StoringMeanwhile(HoldingsMaintainer):
    """A maintainer that stores the next of ``parts`` each time it looks for events stored while it applied."""

    def __init__(self, location: StoreLocation, ingestor: Ingestor, parts: list[tuple[list[Record], int]]) -> None:
        super().__init__(location)
        self.ingestor, self.parts = ingestor, parts

    def _newer_events(self, since: int, cutoff: int | None) -> tuple[int, dict[str, dict[int, int]]] | None:
        if self.parts:
            _store_part(self.ingestor, *self.parts.pop(0))
        return super()._newer_events(since, cutoff)


@settings(max_examples=examples(24))
@given(data=st.data())
def test_events_stored_while_a_refresh_applied_join_its_commit_and_equal_a_rebuild(data: st.DataObject) -> None:
    """A part stored while a refresh applies (often stamped earlier) joins its commit; then a late part: as rebuilt."""
    records = data.draw(st.one_of(histories(), nightly_histories()).filter(lambda r: len(r) >= 3))
    cuts = sorted(data.draw(st.lists(st.integers(1, len(records) - 1), min_size=2, max_size=2, unique=True)))
    with tempfile.TemporaryDirectory() as folder:
        location = StoreLocation.embedded(Path(folder))
        ingestor = Ingestor(location, "events", taxonomy=TAXONOMY)
        _store_part(ingestor, records[: cuts[0]], 0)
        maintainer = _StoringMeanwhile(location, ingestor, [(records[cuts[0] : cuts[1]], cuts[0])])
        done = maintainer.refresh()
        stored = location.load()
        assert done.events >= cuts[1] and done.source == stored.current_snapshot().snapshot_id  # type: ignore[union-attr]
        assert read_state(load_holdings(location)).applied == store_holdings.event_offsets(stored)
        # the same maintainer goes on (its engine and the events it keeps for a replay): the last part
        _store_part(ingestor, records[cuts[1] :], cuts[1])
        maintainer.refresh()
        assert _equals_a_rebuild(location)


def test_a_late_event_after_a_refresh_that_looked_again_replays_what_it_applied_then(tmp_path: Path) -> None:
    """What a refresh applied at its second look is kept for a replay: a late event after it rolls back over it."""
    location = StoreLocation.embedded(tmp_path / "s")
    ingestor = Ingestor(location, "events", taxonomy=TAXONOMY)
    _store_part(ingestor, [_collected("s1", 10), _collected("s2", 20)], 0)
    maintainer = _StoringMeanwhile(location, ingestor, [([_erased("s1", 30)], 2)])
    assert maintainer.refresh().events == 3
    _store_part(ingestor, [_collected("s3", 25)], 3)  # late: replayed with the erasure kept in memory
    assert maintainer.refresh().rolled_back_to is not None
    assert [row[9] for row in _rows(location) if row[1] == "s1"] == [at_minute(30)]  # still ended
    assert _equals_a_rebuild(location)


def test_a_copy_of_a_retired_event_stored_after_retention_holds_nothing_again(tmp_path: Path) -> None:
    """An event delivered again after retention retired it (read at the cut-off) starts no second run."""
    location = StoreLocation.embedded(tmp_path / "s")
    ingestor = Ingestor(location, "events", taxonomy=TAXONOMY)
    original = _collected("s1", 10)
    _store_part(ingestor, [original, _erased("s1", 20), _collected("s2", 40)], 0)
    maintainer = HoldingsMaintainer(location)
    maintainer.refresh()
    retire_events(location, at_minute(30), refresh_holdings=maintainer.refresh, grace_s=0)
    _store_part(ingestor, [original], 3)  # the same event again (at-least-once), older than the cut-off
    latest = location.load().current_snapshot()
    assert latest is not None
    # a reader of that snapshot before any refresh computes its holdings from the stored ones and the copy
    query = "SELECT arrived_at, ended_at FROM holdings_all WHERE kind = 'run' AND subject = 's1'"
    computed = Store(location, snapshot=latest.snapshot_id)
    assert [(r["arrived_at"], r["ended_at"]) for r in computed.sql(query)] == [(at_minute(10), at_minute(20))]
    assert computed.holdings_snapshot_id is None  # computed, not read
    maintainer.refresh()
    held = [(row[4], row[9]) for row in _rows(location) if row[1] == "s1"]
    assert held == [(at_minute(10), at_minute(20))]  # the old run alone, still ended


def test_a_copy_of_a_retired_erasure_stored_after_retention_ends_nothing_collected_since(tmp_path: Path) -> None:
    """An erasure delivered again after retention retired it leaves what was collected after it held."""
    location = StoreLocation.embedded(tmp_path / "s")
    ingestor = Ingestor(location, "events", taxonomy=TAXONOMY)
    erasure = _erased("s1", 20)
    _store_part(ingestor, [_collected("s1", 10), erasure, _collected("s1", 25), _collected("s2", 40)], 0)
    maintainer = HoldingsMaintainer(location)
    maintainer.refresh()
    retire_events(location, at_minute(30), refresh_holdings=maintainer.refresh, grace_s=0)
    _store_part(ingestor, [erasure], 4)  # the same erasure again, older than the cut-off
    latest = location.load().current_snapshot()
    assert latest is not None
    query = "SELECT arrived_at, ended_at FROM holdings_all WHERE kind = 'run' AND subject = 's1' ORDER BY 1"
    computed = Store(location, snapshot=latest.snapshot_id)
    held = [(at_minute(10), at_minute(20)), (at_minute(25), None)]
    assert [(r["arrived_at"], r["ended_at"]) for r in computed.sql(query)] == held
    maintainer.refresh()
    assert sorted((row[4], row[9]) for row in _rows(location) if row[1] == "s1") == held


def test_events_stored_after_a_compaction_wait_for_the_next_refresh(tmp_path: Path) -> None:
    """A compaction while a refresh applied (rows rewritten, not appended): the refresh commits what it read first."""
    location = StoreLocation.embedded(tmp_path / "s")
    ingestor = Ingestor(location, "events", taxonomy=TAXONOMY)
    _store_part(ingestor, [_collected("s1", 10), _collected("s2", 20)], 0)
    first = location.load().current_snapshot()
    assert first is not None

    class Compacting(HoldingsMaintainer):
        def _newer_events(self, since: int, cutoff: int | None) -> tuple[int, dict[str, dict[int, int]]] | None:
            _store_part(ingestor, [_collected("s3", 15)], 2)
            Store(location).compact(min_files=1, expire_after_s=3600.0)
            return super()._newer_events(since, cutoff)

    maintainer = Compacting(location)
    done = maintainer.refresh()
    assert done.events == 2 and done.source == first.snapshot_id
    assert HoldingsMaintainer(location).refresh().rolled_back_to is not None  # s3, late, in the next one
    assert _equals_a_rebuild(location)


def test_events_are_read_under_the_cut_off_given(tmp_path: Path) -> None:
    """``engine_events(floor=)`` clamps to the cut-off given, not to one a retention run moved since."""
    location = StoreLocation.embedded(tmp_path / "s")
    ingestor = Ingestor(location, "events", taxonomy=TAXONOMY)
    original = _collected("s1", 10)
    _store_part(ingestor, [original, _collected("s2", 40)], 0)
    maintainer = HoldingsMaintainer(location)
    maintainer.refresh()
    retire_events(location, at_minute(30), refresh_holdings=maintainer.refresh, grace_s=0)
    _store_part(ingestor, [original], 2)  # a copy stored after retention
    store = Store(location, holdings=False)
    [pinned] = [e.at for e in store.engine_events({}, None) if e.subject_id == "s1"]
    [told] = [e.at for e in store.engine_events({}, None, floor=None) if e.subject_id == "s1"]
    assert (pinned, told) == (micros(at_minute(30)), micros(at_minute(10)))


def _collected(subject: str, minute: int) -> Record:
    return make_record("COLLECTED", system="app", system_region="CN", subject_id=subject, holder=PARTY["app"],
                       purpose="essential.service", legal_basis="CONTRACT", categories=["user.contact"],
                       occurred_at=at_minute(minute), event_id=str(uuid.uuid4()))  # fmt: skip


def _erased(subject: str, minute: int) -> Record:
    return make_record("ERASED", system="app", system_region="CN", subject_id=subject, holder=PARTY["app"],
                       categories=["user.contact"], erasure_outcome="ERASED", hold_reason="a test",
                       occurred_at=at_minute(minute), event_id=str(uuid.uuid4()))  # fmt: skip


def _equals_a_rebuild(location: StoreLocation) -> bool:
    kept = _rows(location)
    HoldingsMaintainer(location).refresh(rebuild=True)
    return kept == _rows(location)


@pytest.mark.parametrize("late_minute", [5, 15])
def test_a_maintainer_does_not_reuse_its_engine_after_another_committed_offsets_alone(
    tmp_path: Path, late_minute: int
) -> None:
    """Another maintainer's refresh that changed no row (same snapshot, new offsets) is not missed by the first."""
    location = StoreLocation.embedded(tmp_path / "s")
    ingestor = Ingestor(location, "events", taxonomy=TAXONOMY)
    first, second = HoldingsMaintainer(location), HoldingsMaintainer(location)
    _store_part(ingestor, [_collected("keep", 10)], 0)
    first.refresh()
    _store_part(ingestor, [_erased("x", 20)], 1)  # x holds nothing yet: no row changes
    second.refresh()
    _store_part(ingestor, [_collected("x", late_minute)], 2)  # late: the erasure ends it
    assert first.refresh().rolled_back_to is not None
    assert _equals_a_rebuild(location)


def test_a_forget_landing_just_after_a_refresh_commit_is_not_taken_for_the_maintainers_own(tmp_path: Path) -> None:
    """A commit right after the maintainer's (a forget of holdings kept past retention) makes it reload its engine."""
    location = StoreLocation.embedded(tmp_path / "s")
    ingestor = Ingestor(location, "events", taxonomy=TAXONOMY)
    maintainer = HoldingsMaintainer(location)
    _store_part(ingestor, [_collected("p", 1), _collected("q", 2)], 0)
    maintainer.refresh()
    retire_events(location, at_minute(10), refresh_holdings=maintainer.refresh, grace_s=0)  # p's rows alone left
    _store_part(ingestor, [_collected("r", 20)], 2)
    commit, forgot = store_holdings._Transaction.commit_transaction, []

    def then_forget(tx: Any) -> Any:
        committed = commit(tx)
        if not forgot and tx._table.name()[-1] == store_holdings.HOLDINGS:
            forgot.append(True)
            assert forget_rows(location, ["p"], digest=lambda i: f"digest-{i}", grace_s=0.0).holdings_rows == 1
        return committed

    with mock.patch.object(store_holdings._Transaction, "commit_transaction", then_forget):
        maintainer.refresh()
    assert forgot
    _store_part(ingestor, [_collected("p", 30)], 3)  # p collected again after the forget
    maintainer.refresh()
    assert [row[4] for row in _rows(location) if row[1] == "p"] == [at_minute(30)]  # not the forgotten run


def test_a_late_event_after_a_compaction_replays_from_the_store(tmp_path: Path) -> None:
    """Events kept in memory serve a replay only while the events table was only appended to since they were read."""
    calls: list[int | None] = []
    events = Scan.events

    def spied(scan: Scan, applied: dict[str, dict[int, int]], since: int | None, **kwargs: Any) -> Any:
        calls.append(since)
        return events(scan, applied, since, **kwargs)

    location = StoreLocation.embedded(tmp_path / "s")
    ingestor = Ingestor(location, "events", taxonomy=TAXONOMY)
    maintainer = HoldingsMaintainer(location)
    with mock.patch.object(Scan, "events", spied):
        _store_part(ingestor, [_collected("s1", 10), _collected("s2", 20)], 0)
        maintainer.refresh()
        _store_part(ingestor, [_collected("s3", 15)], 2)
        assert maintainer.refresh().rolled_back_to is not None and _replays_read(calls) == 0  # appended: memory
        Store(location).compact(min_files=1, expire_after_s=3600.0)
        _store_part(ingestor, [_collected("s4", 12)], 3)
        assert maintainer.refresh().rolled_back_to is not None and _replays_read(calls) == 1  # rewritten: store
    kept = _rows(location)
    HoldingsMaintainer(location).refresh(rebuild=True)
    assert kept == _rows(location)


@pytest.mark.parametrize("kind", ["collected", "erased"])
def test_a_forgotten_persons_events_held_in_memory_are_not_replayed(tmp_path: Path, kind: str) -> None:
    """After a forget, a late event's replay applies none of the person's events the maintainer held (rows or none)."""
    location = StoreLocation.embedded(tmp_path / "s")
    ingestor = Ingestor(location, "events", taxonomy=TAXONOMY)
    maintainer = HoldingsMaintainer(location)
    gone = _collected("gone", 20) if kind == "collected" else _erased("gone", 20)  # an erasure makes no row
    _store_part(ingestor, [_collected("keep", 10), gone], 0)
    maintainer.refresh()
    forgotten = forget_rows(location, ["gone"], digest=lambda i: f"digest-{i}", grace_s=0.0)
    assert forgotten.events_rows == 1 and (forgotten.holdings_rows > 0) == (kind == "collected")
    _store_part(ingestor, [_collected("gone", 5)], 2)  # collected again, before the forgotten event
    assert maintainer.refresh().rolled_back_to is not None
    runs = [(row[4], row[9]) for row in _rows(location) if row[1] == "gone"]
    assert runs == [(at_minute(5), None)]  # the new collection alone, held: nothing forgotten came back
    assert _equals_a_rebuild(location)


@settings(max_examples=examples(12))
@given(data=st.data())
def test_a_restarted_maintainer_restored_a_few_rows_at_a_time_equals_a_rebuild(data: st.DataObject) -> None:
    """A new maintainer process restores its state from the table in slices (3 rows here): the same as a rebuild."""
    records = data.draw(histories().filter(lambda r: len(r) >= 2))
    split = data.draw(st.integers(1, len(records) - 1))
    codec = Codec()
    with tempfile.TemporaryDirectory() as folder, mock.patch.object(store_holdings, "_RESTORE_ROWS", 3):
        location = StoreLocation.embedded(Path(folder))
        ingestor = Ingestor(location, "events", taxonomy=TAXONOMY)
        for offset, r in enumerate(records):
            assert ingestor.add(0, offset, codec.encode_record(r)) is None
            if offset + 1 == split:
                ingestor.flush()
                HoldingsMaintainer(location).refresh()
        ingestor.flush()
        HoldingsMaintainer(location).refresh()  # restarted: restores from the table, then applies the rest
        kept = _rows(location)
        HoldingsMaintainer(location).refresh(rebuild=True)
        assert kept == _rows(location)


@settings(max_examples=examples(24))
@given(data=st.data())
def test_late_events_in_a_second_part_roll_back_and_equal_a_rebuild(data: st.DataObject) -> None:
    """Random histories stored in two parts (the second often stamped earlier): incremental equals rebuilt."""
    records = data.draw(histories().filter(lambda r: len(r) >= 2))
    _late_case(records, data.draw(st.integers(1, len(records) - 1)))


@settings(max_examples=examples(24))
@given(data=st.data())
def test_late_nightly_exports_in_a_second_part_roll_back_and_equal_a_rebuild(data: st.DataObject) -> None:
    """Histories of re-sent bulk flows across a new year, stored in two parts: incremental equals rebuilt."""
    records = data.draw(nightly_histories().filter(lambda r: len(r) >= 2))
    _late_case(records, data.draw(st.integers(1, len(records) - 1)))


def test_a_reader_while_the_maintainer_lags_reads_the_holdings_events_snapshot(tmp_path: Path) -> None:
    """Events stored after the last refresh are counted in ``behind`` and left out of the answer, until a refresh."""
    messages, people, _ = _world(20)
    location = StoreLocation.embedded(tmp_path / "store")
    ingestor = Ingestor(location, "events", taxonomy=TAXONOMY)
    half = len(messages) // 2
    for offset, (_, value) in enumerate(messages[:half]):
        ingestor.add(0, offset, value)
    ingestor.flush()
    HoldingsMaintainer(location).refresh()
    source = read_state(load_holdings(location)).source
    for offset, (_, value) in enumerate(messages[half:], half):
        ingestor.add(0, offset, value)
    ingestor.flush()
    store = Store(location)
    assert store.count() == half
    assert store.snapshot_id == source and store.behind == len(messages) - half
    assert Store(location, holdings=False).count() == len(messages)  # the events are there
    HoldingsMaintainer(location).refresh()
    store = Store(location)
    assert store.count() == len(messages) and store.behind == 0
