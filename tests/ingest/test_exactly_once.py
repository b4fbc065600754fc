"""Exactly once under kill -9, zombies and killed compactions: real Kafka, PostgreSQL, S3 and processes.

Each consumer is its own process (``python -m consumers.ingest``) with its own working folder and
settings from its environment only; the processes share nothing but the catalog and the warehouse.
Every check reads the table itself and sets it against where the broker said it put each event.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from consumers import stopping
from lineage import Codec, Settings
from lineage.contract.records import make_record, new_event_id
from lineage.contract.taxonomy import default_taxonomy
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation
from lineage.store.tables import offset_key, owner_key
from lineage.transport.kafka import KafkaEventSink, create_topics
from tests.fixtures import KAFKA_CLIENTS, T0, private_file
from tests.services import Postgres, SeaweedS3

pytestmark = pytest.mark.integration

CODEC = Codec()
REPO = Path(__file__).parents[2]
PARTITIONS = 4
EVENTS = 200_000
# a commit every ~1-2 s per consumer: the flush interval is 2 s, and 6,000 rows take about that long here
SEGMENT_ROWS = "6000"
IDLE_EXIT_S = "8"
START_MARK = "--- started by the test at"  # written into a consumer's log before each start

Message = tuple[str, bytes, bytes]  # event id, key, Avro value


def _messages(n: int) -> tuple[Message, ...]:
    """The first n of 200,000 events made once per session (each test's store is fresh)."""
    return _all_messages()[:n]


@functools.cache
def _all_messages() -> tuple[Message, ...]:
    """200,000 valid COLLECTED events over 5,000 subjects, encoded."""
    out = []
    for i in range(EVENTS):
        event_id = new_event_id()
        subject = f"user-{i % 5000}"
        record = make_record(
            "COLLECTED",
            system="web",
            system_region="CN",
            event_id=event_id,
            subject_id=subject,
            categories=["user.contact.email"],
            purpose="essential.service",
            legal_basis="CONTRACT",
            occurred_at=T0,
        )
        out.append((event_id, subject.encode(), CODEC.encode_record(record)))
    return tuple(out)


def _topic(kafka_bootstrap: str) -> Settings:
    """A fresh topic of 4 partitions and its dead-letter topic."""
    name = f"eo.{uuid.uuid4().hex[:12]}"
    settings = Settings(
        bootstrap_servers=kafka_bootstrap,
        topic=name,
        dead_letter_topic=name + ".dlq",
        client_id="lineage-eo",
        connect_timeout_s=20,
    )
    create_topics(settings, [settings.topic, settings.dead_letter_topic], partitions=PARTITIONS)
    return settings


class Producer(threading.Thread):
    """Sends the messages in chunks with a pause between them, and keeps where the broker put each."""

    def __init__(self, settings: Settings, messages: tuple[Message, ...], chunks: int, pause_s: float) -> None:
        """Prepare to send ``messages`` in ``chunks`` parts, ``pause_s`` apart."""
        super().__init__(name="eo-producer")
        self.settings, self.messages, self.chunks, self.pause_s = settings, messages, chunks, pause_s
        self.placed: dict[tuple[int, int], str] = {}  # (partition, offset) -> event id
        self.error: BaseException | None = None

    def run(self) -> None:
        """Send everything, then read each acknowledgement."""
        try:
            sink = KafkaEventSink(self.settings)
            size = -(-len(self.messages) // self.chunks)
            deliveries = []
            for start in range(0, len(self.messages), size):
                for event_id, key, value in self.messages[start : start + size]:
                    deliveries.append(sink.send(self.settings.topic, key, value, event_id))
                time.sleep(self.pause_s)
            sink.flush(120)
            assert sink.failures() == []
            for d in deliveries:
                receipt = d.result(60)
                self.placed[(receipt.partition, receipt.offset)] = d.event_id
            sink.close(10)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread by finish()
            self.error = exc

    def finish(self) -> dict[tuple[int, int], str]:
        """Wait for the last acknowledgement; where each event went."""
        self.join(300)
        if self.is_alive() or self.error is not None:
            pytest.fail(f"the producer did not finish: {self.error!r}")
        assert len(self.placed) == len(self.messages)
        return self.placed


@dataclass
class SharedStore:
    """A store in PostgreSQL + S3: the environment a process needs, and the location the test reads."""

    env: dict[str, str] = field(repr=False)  # holds the S3 secret key: never in a test report
    location: StoreLocation


def _shared_store(postgres: Postgres, s3: SeaweedS3, secrets_dir: Path) -> SharedStore:
    """A fresh namespace in the catalog and prefix in the bucket; the password in a 0600 file, keys in the env."""
    namespace = f"t_{uuid.uuid4().hex}"
    password_file = private_file(secrets_dir / "catalog-password", postgres.password + "\n")
    env = {
        "LINEAGE_CATALOG_URI": postgres.sqlalchemy_uri(),
        "LINEAGE_CATALOG_PASSWORD_FILE": str(password_file),
        "LINEAGE_NAMESPACE": namespace,
        "LINEAGE_WAREHOUSE": f"s3://{s3.bucket}/{namespace}",
        "LINEAGE_S3_ENDPOINT": s3.endpoint,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }
    settings = Settings(
        catalog_uri=env["LINEAGE_CATALOG_URI"],
        catalog_password=postgres.password,
        namespace=namespace,
        warehouse=env["LINEAGE_WAREHOUSE"],
        s3_endpoint=s3.endpoint,
        s3_access_key_id=s3.access_key,
        s3_secret_access_key=s3.secret_key,
    )
    return SharedStore(env, StoreLocation.from_settings(settings, secrets_dir / "unused"))


@dataclass
class Fleet:
    """Consumer processes by name: each with its own folder (cwd, store dir, log) and environment."""

    kafka: Settings
    root: Path
    store_env: dict[str, str] = field(repr=False)  # holds the S3 secret key: never in a test report
    store_dir: Path | None = None
    """One store folder for all (the embedded store); None: each process gets a folder of its own."""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    secrets: tuple[str, ...] = field(default=(), repr=False)
    unexpected: list[str] = field(default_factory=list)

    def folder(self, name: str) -> Path:
        """The process's own folder (0700)."""
        path = self.root / name
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def env(self, name: str) -> dict[str, str]:
        """Everything the process is told, by environment: no setting on its command line."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LINEAGE_", "AWS_"))}
        env.update(
            PYTHONPATH=str(REPO),  # this checkout's code, whatever the venv's editable install points at
            LINEAGE_BOOTSTRAP_SERVERS=self.kafka.bootstrap_servers,
            LINEAGE_TOPIC=self.kafka.topic,
            LINEAGE_DEAD_LETTER_TOPIC=self.kafka.dead_letter_topic,
            LINEAGE_GROUP_ID=self.kafka.topic + ".group",
            LINEAGE_CLIENT_ID=f"eo-{name}",
            LINEAGE_KAFKA_CLIENT=self.kafka.kafka_client,
            LINEAGE_STORE_DIR=str(self.store_dir or self.folder(name) / "store"),
            **self.store_env,
        )
        return env

    def start(self, name: str, *, drain: bool = False) -> None:
        """Start consumer ``name`` (static membership: a restart takes its partitions back); ``drain``: exit when idle.

        Not during the kills: a restarted static member can wait 10-20 s for the group to hand it
        partitions, and with --exit-when-idle it would count that as idle and leave.
        """
        folder = self.folder(name)
        fd = os.open(folder / "consumer.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.write(fd, f"{START_MARK} {time.strftime('%H:%M:%S')}\n".encode())
        try:
            self.procs[name] = stopping.spawn(
                # --no-holdings: what is checked here is the events table (the holdings have their own kill tests)
                [sys.executable, "-m", "consumers.ingest", "--segment-rows", SEGMENT_ROWS, "--no-holdings",
                 "--instance-id", f"{self.kafka.topic}-{name}", *(["--exit-when-idle", IDLE_EXIT_S] * drain)],
                cwd=folder,
                env=self.env(name),
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        finally:
            os.close(fd)

    def kill(self, name: str) -> None:
        """SIGKILL it (noting an exit it made on its own first) and reap it."""
        proc = self.procs[name]
        code = proc.poll()
        if code is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        elif code != 0:
            self.unexpected.append(f"{name} exited with {code} on its own:\n{self.log_tail(name)}")

    def working(self, name: str) -> bool:
        """Whether its latest start has been given partitions (it has claimed them in the table)."""
        log = (self.folder(name) / "consumer.log").read_text(encoding="utf-8", errors="replace")
        return "assigned member=" in log.rpartition(START_MARK)[2]

    def wait_working(self, names: list[str], timeout_s: float = 120) -> None:
        """Wait until each of ``names`` is consuming; fail with its log if one never gets there."""
        deadline = time.monotonic() + timeout_s
        for name in names:
            while not self.working(name):
                if self.procs[name].poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"consumer {name} never got its partitions:\n{self.log_tail(name)}")
                time.sleep(0.2)

    def drain(self, timeout_s: float) -> None:
        """Stop each cleanly (SIGTERM: it commits what it holds), then run each until idle; fail if one fails."""
        for name, proc in self.procs.items():
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(120)  # its last commit, at the load CI runs at
            except subprocess.TimeoutExpired:
                pytest.fail(f"consumer {name} did not stop in 120 s after SIGTERM:\n{self.log_tail(name)}")
            if code != 0:
                self.unexpected.append(f"{name} exited with {code} after SIGTERM:\n{self.log_tail(name)}")
        for name in list(self.procs):
            self.start(name, drain=True)
        self.finish(timeout_s)

    def finish(self, timeout_s: float) -> None:
        """Wait for each to exit (idle); fail with its log if one fails or hangs."""
        deadline = time.monotonic() + timeout_s
        for name, proc in self.procs.items():
            try:
                code = proc.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"consumer {name} did not drain and exit in {timeout_s:.0f} s:\n{self.log_tail(name)}")
            if code != 0:
                self.unexpected.append(f"{name} exited with {code}:\n{self.log_tail(name)}")
        assert not self.unexpected, "\n\n".join(self.unexpected)
        for name in self.procs:
            log = (self.folder(name) / "consumer.log").read_text(encoding="utf-8", errors="replace")
            for secret in self.secrets:
                assert secret not in log, f"a secret is in consumer {name}'s log"

    def stop(self) -> None:
        """Kill whatever still runs (a failed test leaves no process behind)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)

    def log_tail(self, name: str, lines: int = 30) -> str:
        """The last lines of a consumer's log."""
        text = (self.folder(name) / "consumer.log").read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture
def fleet_root(tmp_path: Path) -> Iterator[list[Fleet]]:
    """Where fleets are kept, so that every process they started is killed at the end, pass or fail."""
    fleets: list[Fleet] = []
    yield fleets
    for fleet in fleets:
        fleet.stop()


def _chaos(fleet: Fleet, producer: Producer, location: StoreLocation, seed: int) -> dict[str, object]:
    """Kill -9 a random consumer 10 times and both at once twice, at random moments, restarting each.

    A consumer needs 5-10 s on this busy machine to import, join the group and claim its partitions,
    so most kills wait until the victim consumes and then come at a random moment 0.5-5 s later (in
    a poll, a flush, a commit); two "early" ones come 1-6 s after a restart, mostly before or while
    it claims.
    """
    rng = random.Random(seed)
    kinds = ["one"] * 6 + ["early"] * 2 + ["both"] * 2
    rng.shuffle(kinds)
    stored_at_kill: list[int] = []
    kills = 0
    for kind in kinds:
        victims = sorted(fleet.procs) if kind == "both" else [rng.choice(sorted(fleet.procs))]
        if kind == "early":
            fleet.kill(victims[0])
            kills += 1
            fleet.start(victims[0])
            time.sleep(rng.uniform(1.0, 6.0))
        else:
            fleet.wait_working(victims)
            time.sleep(rng.uniform(0.5, 5.0))
        for name in victims:
            fleet.kill(name)
            kills += 1
        stored_at_kill.append(_stored_offsets(location, fleet.kafka.topic))
        if kind == "both":
            time.sleep(rng.uniform(0.0, 1.0))  # both down for a moment
        for name in victims:
            fleet.start(name)
    return {"kills": kills, "stored_at_kill": stored_at_kill, "producer_done_during_chaos": not producer.is_alive()}


def _stored_offsets(location: StoreLocation, topic: str) -> int:
    """How many offsets the table's properties say are stored (cheap: no data file is read)."""
    props = location.load().properties if Store(location).holds_events() else {}
    return sum(int(props.get(offset_key(topic, p), -1)) + 1 for p in range(PARTITIONS))


def _check_exact(location: StoreLocation, topic: str, placed: dict[tuple[int, int], str]) -> dict[str, int]:
    """Every (partition, offset) the broker acknowledged is stored once, with its event; nothing else is."""
    rows = Store(location).sql("SELECT kafka_partition, kafka_offset, event_id, origin FROM events")
    assert {r["origin"] for r in rows} == {topic}
    counts = Counter((r["kafka_partition"], r["kafka_offset"]) for r in rows)
    doubled = {k: n for k, n in counts.items() if n > 1}
    assert not doubled, f"{len(doubled)} offsets stored more than once, e.g. {sorted(doubled.items())[:5]}"
    missing = placed.keys() - counts.keys()
    assert not missing, f"{len(missing)} offsets never stored, e.g. {sorted(missing)[:5]}"
    assert counts.keys() == placed.keys(), f"offsets stored that were never sent: {sorted(counts - placed.keys())[:5]}"
    assert {(r["kafka_partition"], r["kafka_offset"]): r["event_id"] for r in rows} == placed
    ids = [r["event_id"] for r in rows]
    assert len(ids) == len(set(ids)) == len(placed)
    table = location.load()
    props = table.properties
    for p in range(PARTITIONS):
        ends = [o for q, o in placed if q == p]
        assert ends and min(ends) == 0 and max(ends) == len(ends) - 1  # 0..end, no gap in what was sent
        assert int(props[offset_key(topic, p)]) == len(ends) - 1
    summaries = [s.summary for s in table.metadata.snapshots if s.summary is not None]
    return {
        "rows": len(rows),
        "data_commits": sum(1 for s in summaries if f"lineage.offsets.{topic}" in s.additional_properties),
        "claims": sum(int(props[owner_key(topic, p)].split(":")[0]) for p in range(PARTITIONS)),
    }


def _run_kill_test(fleet: Fleet, location: StoreLocation, fleets: list[Fleet], seed: int) -> None:
    fleets.append(fleet)
    started = time.monotonic()
    producer = Producer(fleet.kafka, _messages(EVENTS), chunks=20, pause_s=2.5)
    producer.start()
    for name in ("a", "b"):
        fleet.start(name)
    chaos = _chaos(fleet, producer, location, seed)
    placed = producer.finish()
    fleet.drain(240)
    seconds = time.monotonic() - started
    figures = _check_exact(location, fleet.kafka.topic, placed)
    stored_at_kill = chaos["stored_at_kill"]
    assert isinstance(stored_at_kill, list)
    # the kills landed mid-stream: some progress was durable at a kill, and not all of it
    assert any(0 < n < EVENTS for n in stored_at_kill), stored_at_kill
    print(f"\n[exactly-once {location.describe()}] events={EVENTS} seconds={seconds:.1f} {chaos} {figures}")


def test_two_consumer_processes_on_postgres_and_s3_killed_at_random_store_every_offset_once(
    kafka_bootstrap: str, postgres: Postgres, s3: SeaweedS3, tmp_path: Path, fleet_root: list[Fleet]
) -> None:
    """Two processes sharing only PostgreSQL and S3, killed -9 14 times (both at once twice), store 200,000 once."""
    kafka = _topic(kafka_bootstrap)
    shared = _shared_store(postgres, s3, tmp_path)
    fleet = Fleet(kafka, tmp_path, shared.env, secrets=(postgres.password, s3.secret_key))
    _run_kill_test(fleet, shared.location, fleet_root, seed=11)


@pytest.mark.parametrize("client", KAFKA_CLIENTS)
def test_two_consumer_processes_on_the_embedded_store_killed_at_random_store_every_offset_once(
    kafka_bootstrap: str, tmp_path: Path, fleet_root: list[Fleet], client: str
) -> None:
    """Two processes on one host sharing the embedded store folder (SQLite + local files), killed the same way."""
    kafka = dataclasses.replace(_topic(kafka_bootstrap), kafka_client=client)
    store_dir = tmp_path / "store"
    fleet = Fleet(kafka, tmp_path, {}, store_dir=store_dir)
    _run_kill_test(fleet, StoreLocation.embedded(store_dir), fleet_root, seed=12)


@dataclass(frozen=True)
class Flush:
    """One writer's flush: when it began, the offsets it offered, what it stored."""

    writer: str
    began: float
    first: int
    last: int
    stored: int


def test_a_fenced_zombie_stores_nothing_and_every_offset_is_stored_once(
    postgres: Postgres, s3: SeaweedS3, tmp_path: Path
) -> None:
    """Two writers forced onto partition 0 claim it in turn; one claimed over stores nothing until it claims again."""
    location = _shared_store(postgres, s3, tmp_path).location
    topic = "zombie.topic"
    n = 4000
    messages = _messages(n)  # offset i carries message i, whoever reads it (as Kafka would give it)
    taxonomy = default_taxonomy()
    writers = {name: Ingestor(location, topic, taxonomy=taxonomy, member=name) for name in ("a", "b")}
    a, b = writers["a"], writers["b"]

    def offer(w: Ingestor, first: int, last: int) -> int:
        for o in range(first, last + 1):
            assert w.add(0, o, messages[o][2]) is None
        return sum(s.rows for s in w.flush())

    # the plain story first: a stores, b claims over it, a (paused, now a zombie) wakes up and commits
    assert a.claim([0]) == {}
    assert offer(a, 0, 199) == 200
    assert b.claim([0]) == {0: 200}
    assert offer(a, 200, 499) == 0 and a.writer.fenced == {0}
    assert offer(b, 200, 349) == 150  # overlaps what the zombie offered: stored once, by the owner
    assert offer(a, 500, 599) == 0  # still fenced

    # then both at once, in threads, claiming in turn at random while the other commits
    claims: list[tuple[float, str]] = []  # (when the claim was durable, who): under claim_lock, in commit order
    claim_lock = threading.Lock()
    flushes: list[Flush] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def run(name: str, seed: int) -> None:
        w, rng = writers[name], random.Random(seed)
        position: int | None = None
        try:
            while not done.is_set():
                if position is None or position >= n or rng.random() < 0.2:
                    with claim_lock:  # claims in turn, so their order in the list is their order in the table
                        position = w.claim([0]).get(0, 0)
                        claims.append((time.monotonic(), name))
                    if position >= n:
                        done.set()
                        break
                last = min(n - 1, position + rng.randint(50, 400) - 1)
                began = time.monotonic()
                stored = offer(w, position, last)
                flushes.append(Flush(name, began, position, last, stored))
                position = last + 1  # a zombie reads on from where it was, like a paused consumer
                if w.stored().get(0) == n:
                    done.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
            errors.append(exc)
            done.set()

    threads = [threading.Thread(target=run, args=(name, seed)) for seed, name in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads), "the writers did not finish in 240 s"

    zombie_flushes = 0
    for f in flushes:
        # fenced: another writer's claim became durable after this writer's last claim and before this flush began
        mine = max((t for t, who in claims if who == f.writer and t < f.began), default=0.0)
        if any(mine < t < f.began for t, who in claims if who != f.writer):
            zombie_flushes += 1
            assert f.stored == 0, f"a fenced writer stored {f.stored} rows: {f}"
    assert zombie_flushes > 0, "the threads never made a zombie: the test proves nothing"

    rows = Store(location).sql("SELECT kafka_partition, kafka_offset, event_id FROM events")
    offsets = Counter(r["kafka_offset"] for r in rows)
    assert {r["kafka_partition"] for r in rows} == {0}
    assert sorted(offsets) == list(range(n)) and set(offsets.values()) == {1}
    assert {r["kafka_offset"]: r["event_id"] for r in rows} == {i: m[0] for i, m in enumerate(messages)}
    conflicts = sum(w.writer.conflicts for w in writers.values())
    print(
        f"\n[zombie] offsets={n} claims={len(claims) + 2} flushes={len(flushes) + 5} "
        f"zombie_flushes_dropped={zombie_flushes + 2} conflicts={conflicts}"
    )


FINGERPRINT = (
    "SELECT count(*) AS n, md5(string_agg(md5(e::VARCHAR), '' ORDER BY kafka_partition, kafka_offset)) AS digest "
    "FROM events e"
)


def _compaction(fleet: Fleet, name: str) -> subprocess.Popen[str]:
    """``lineage compact`` with the default grace and a 1 MB target, so there is work; settings by environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "lineage.cli", "compact", "--target-mb", "1"],
        cwd=fleet.folder(name),
        env=fleet.env(name),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _compaction_commits(location: StoreLocation) -> int:
    summaries = [s.summary.additional_properties for s in location.load().metadata.snapshots if s.summary]
    return sum(1 for s in summaries if "lineage.compaction" in s)


def _wait_for_compaction_commit(location: StoreLocation, before: int, proc: subprocess.Popen[str]) -> None:
    """Until a compaction commit more than ``before`` is in the table, or the run ends (at most 60 s)."""
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and _compaction_commits(location) <= before:
        time.sleep(0.1)


def _files(location: StoreLocation) -> int:
    return len(list(location.load().scan().plan_files()))


def test_compactions_killed_at_random_while_consumers_write_change_no_answer(
    kafka_bootstrap: str, postgres: Postgres, s3: SeaweedS3, tmp_path: Path, fleet_root: list[Fleet]
) -> None:
    """Five compactions killed -9 mid-run while two consumers write, then one that finishes: every offset once."""
    kafka = _topic(kafka_bootstrap)
    shared = _shared_store(postgres, s3, tmp_path)
    location = shared.location
    fleet = Fleet(kafka, tmp_path, shared.env, secrets=(postgres.password, s3.secret_key))
    fleet_root.append(fleet)
    started = time.monotonic()
    events = 100_000
    producer = Producer(kafka, _messages(events), chunks=10, pause_s=3.0)
    producer.start()
    for name in ("a", "b"):
        # not --exit-when-idle while the producer runs: a commit that takes 8 s on a loaded machine, or
        # a producer thread paused as long, looks idle, and both would leave with events still to come
        fleet.start(name)
    deadline = time.monotonic() + 120
    while _stored_offsets(location, kafka.topic) < 15_000:  # a few commits' worth of small files first
        assert time.monotonic() < deadline, "the consumers stored nothing in 120 s"
        time.sleep(1)
    rng = random.Random(4)
    killed, finished, runs = 0, 0, 0
    took: list[float] = []  # how long the runs that finished took: later kills land inside a run
    while killed < 5:
        runs += 1
        assert runs <= 40, f"only {killed} of {runs} compactions were still running when their kill came"
        begun = time.monotonic()
        proc = _compaction(fleet, "compact")
        if runs % 2:
            # 2-10 s of a run is Python importing the libraries (as busy as the machine is): kills
            # before, while reading or writing files, or while committing; some runs finish first.
            # Scaled to the runs seen to finish: on a quiet machine a whole run takes 2-3 s
            span = min([8.0, *took])  # each an upper bound (seen after the sleep): the least is nearest
            time.sleep(rng.uniform(0.1, 0.95) * span)
        else:
            # right after the run's first group commit: killed between groups, or during the next commit
            _wait_for_compaction_commit(location, _compaction_commits(location), proc)
            time.sleep(rng.uniform(0.0, 0.6))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
            killed += 1
        else:
            out, _ = proc.communicate()
            assert proc.returncode == 0, out
            finished += 1
            took.append(time.monotonic() - begun)
        # readers see a whole table at every moment: no offset twice, no file missing
        seen = Store(location).sql(
            "SELECT count(*) AS n, count(DISTINCT (kafka_partition, kafka_offset)) AS d FROM events"
        )[0]
        assert seen["n"] == seen["d"] > 0, seen
    placed = producer.finish()
    fleet.drain(240)
    before = Store(location).sql(FINGERPRINT)[0]
    files_before = _files(location)
    final = subprocess.run(
        [sys.executable, "-m", "lineage.cli", "compact", "--target-mb", "1"],
        cwd=fleet.folder("compact"),
        env=fleet.env("compact"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert final.returncode == 0, final.stdout + final.stderr
    after = Store(location).sql(FINGERPRINT)[0]
    files_after = _files(location)
    assert after == before and before["n"] == events
    assert files_after <= files_before, (files_before, files_after, final.stdout)
    if files_after == files_before:
        # on a loaded machine the runs before may have finished the work (the producer is done by then):
        # then the last run finds nothing to do, and earlier runs must have committed the compaction
        assert final.stdout.startswith("rewrote 0 files"), final.stdout
        assert _compaction_commits(location) > 0, "no compaction ever committed"
    figures = _check_exact(location, kafka.topic, placed)
    compactions = _compaction_commits(location)
    print(
        f"\n[compaction] events={events} seconds={time.monotonic() - started:.1f} killed={killed} "
        f"finished_before_kill={finished} compaction_commits={compactions} (final run's included) "
        f"files {files_before}->{files_after} "
        f"final: {final.stdout.strip()} {figures}"
    )
