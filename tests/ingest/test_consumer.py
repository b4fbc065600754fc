"""The ingest consumer on a real broker: dead letters, crashes, two consumers, readers while writing."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import kafka

from consumers import stopping
from lineage import Codec, Settings
from lineage.contract.records import make_record, new_event_id, to_record
from lineage.store import Store
from lineage.transport.kafka import KafkaEventSink, read_messages
from tests.fixtures import T0, child_pids, invalid_but_decodable, sample_events, wait_until

CODEC = Codec()
REPO = Path(__file__).parents[2]


def _events(n: int, prefix: str = "user") -> list[tuple[str, bytes, bytes]]:
    """(event id, key, value) for n valid COLLECTED events over 5,000 subjects."""
    out = []
    for i in range(n):
        event_id = new_event_id()
        subject = f"{prefix}-{i % 5000}"
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
    return out


def _produce(settings: Settings, messages: list[tuple[str, bytes, bytes]]) -> None:
    sink = KafkaEventSink(settings)
    for event_id, key, value in messages:
        sink.send(settings.topic, key, value, event_id)
    sink.flush(60)
    assert sink.failures() == []
    sink.close(10)


def _consumer(settings: Settings, store: Path, *extra: str, log: Path | None = None) -> subprocess.Popen[str]:
    """``python -m consumers.ingest`` started as its supervisor starts it (stop signals held until handled).

    Its output is piped, or appended to ``log`` (a test that waits on a line reads it there meanwhile).
    """
    out = subprocess.PIPE if log is None else os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return _spawn_consumer(settings, store, extra, out)
    finally:
        if log is not None:
            os.close(out)


def _spawn_consumer(settings: Settings, store: Path, extra: tuple[str, ...], out: int) -> subprocess.Popen[str]:
    return stopping.spawn(
        [
            sys.executable,
            "-m",
            "consumers.ingest",
            "--store",
            str(store),
            "--bootstrap-servers",
            settings.bootstrap_servers,
            "--topic",
            settings.topic,
            "--group",
            settings.topic + ".group",
            *extra,
        ],
        cwd=REPO,
        env={**os.environ, "LINEAGE_DEAD_LETTER_TOPIC": settings.dead_letter_topic,
             "LINEAGE_KAFKA_CLIENT": settings.kafka_client},  # fmt: skip
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stored(store: Path) -> int:
    """Events in the store (0 before its first commit)."""
    return Store(store).count() if Store(store).holds_events() else 0


def _finish(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def test_dead_letters_carry_reasons_and_good_events_are_kept(kafka_settings: Settings, tmp_path: Path) -> None:
    """Good events interleaved with garbage are all stored; each bad message is in the DLQ with its reason."""
    good = _events(300)
    v1 = {k: v for k, v in to_record(sample_events()[0]).items() if k not in ("linked_subject_ids", "age_band")}
    bad_values = {
        b"random": os.urandom(64),
        b"truncated": good[0][2][:25],
        b"fingerprint": b"\xc3\x01" + b"\x13" * 8 + good[0][2][10:],
        b"invalid": invalid_but_decodable(),
        b"cross-border": CODEC.encode_record(
            {**to_record(sample_events()[1]), "event_id": new_event_id(), "mechanism": None}
        ),
    }
    stream: list[tuple[str, bytes, bytes]] = []
    for i, (event_id, key, value) in enumerate(good):
        stream.append((event_id, key, value))
        if i % 60 == 30:
            for name, value_bad in bad_values.items():
                stream.append(("bad", name, value_bad))
    v1_id = v1["event_id"]
    stream.append((v1_id, b"v1", CODEC.encode_with(1, v1)))
    _produce(kafka_settings, stream)
    out = _finish(_consumer(kafka_settings, tmp_path, "--exit-when-idle", "4"))
    assert "dead_letters=25" in out
    ids = Store(tmp_path).event_ids()
    assert sorted(ids) == sorted([e for e, _, _ in good] + [v1_id])
    letters = list(read_messages(kafka_settings, kafka_settings.dead_letter_topic, idle_timeout_s=5))
    assert len(letters) == 25
    reasons = {m.key: dict(m.headers)["lineage.reason"].decode() for m in letters}
    assert "bad header" in reasons[b"random"]
    assert "truncated or corrupt" in reasons[b"truncated"]
    assert "unknown writer schema fingerprint" in reasons[b"fingerprint"]
    assert "unknown data category" in reasons[b"invalid"]
    assert "mechanism" in reasons[b"cross-border"]
    sample = letters[0]
    headers = dict(sample.headers)
    assert headers["lineage.source.topic"].decode() == kafka_settings.topic
    assert int(headers["lineage.source.offset"]) >= 0 and int(headers["lineage.source.partition"]) in (0, 1, 2)
    assert sample.value in bad_values.values()


def test_kill_9_at_random_moments_loses_and_doubles_nothing(client_settings: Settings, tmp_path: Path) -> None:
    """While 100,000 events are produced, the consumer is killed -9 six times; the store ends exact."""
    messages = _events(100_000)
    producer = threading.Thread(target=_produce, args=(client_settings, messages))
    producer.start()
    rng = random.Random(7)
    stored_after_kill = []
    for _ in range(6):
        before = _stored(tmp_path)
        proc = _consumer(client_settings, tmp_path, "--segment-rows", "4000", "--instance-id", "crash-test")
        # once it works (it stored a commit of its own, however long its start took), at a random moment
        wait_until(lambda: _stored(tmp_path) > before or before == 100_000, "commit", proc)  # noqa: B023
        time.sleep(rng.uniform(0.0, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        store = Store(tmp_path)
        stored_after_kill.append(store.count() if store.holds_events() else 0)
    producer.join()
    # the kills landed mid-stream: some progress was durable, not all of it
    assert any(0 < n < 100_000 for n in stored_after_kill), stored_after_kill
    _finish(_consumer(client_settings, tmp_path, "--exit-when-idle", "5", "--instance-id", "crash-test"), 300)
    ids = Store(tmp_path).event_ids()
    assert len(ids) == len(set(ids)) == 100_000
    assert set(ids) == {e for e, _, _ in messages}


def test_exit_when_idle_does_not_count_the_wait_for_the_first_assignment(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """A group slow to hand out partitions (a load-10 join) is not idleness: the consumer stores all, then exits."""
    messages = _events(500)
    _produce(kafka_settings, messages)
    # a member that joined and then stopped polling: a rebalance waits for it (its 45 s poll interval),
    # far past the 3 idle seconds, however slowly the consumer starts
    stuck = kafka.KafkaConsumer(
        kafka_settings.topic, bootstrap_servers=kafka_settings.bootstrap_servers,
        group_id=kafka_settings.topic + ".group", enable_auto_commit=False, max_poll_records=1,
        max_poll_interval_ms=45_000, session_timeout_ms=10_000,
    )  # fmt: skip
    try:
        wait_until(lambda: stuck.poll(timeout_ms=500) is not None and bool(stuck.assignment()), "a stuck member")
        out = _finish(_consumer(kafka_settings, tmp_path, "--exit-when-idle", "3"), 300)
    finally:
        stuck.close(autocommit=False)
    assert _stored(tmp_path) == 500, out


def test_sigterm_at_any_moment_of_a_consumers_start_stops_it_cleanly(client_settings: Settings, tmp_path: Path) -> None:
    """SIGTERM from the first instant of a start (interpreter, imports, joining, claiming): exit 0, nothing lost."""
    messages = _events(3_000)
    _produce(client_settings, messages)
    for delay in (0.0, 0.05, 0.2, 0.5, 1.0, 2.0, 4.0):
        proc = _consumer(client_settings, tmp_path, "--segment-rows", "500", "--instance-id", "early")
        time.sleep(delay)  # not a wait for anything: the moment the stop lands, every one of them valid
        proc.send_signal(signal.SIGTERM)
        try:
            out = _finish(proc)  # exit 0, not -15 (SIGTERM's default action)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        assert "Traceback" not in out, out
    _finish(_consumer(client_settings, tmp_path, "--exit-when-idle", "5", "--instance-id", "early"), 300)
    ids = Store(tmp_path).event_ids()
    assert len(ids) == len(set(ids)) == 3_000 and set(ids) == {e for e, _, _ in messages}


def test_two_consumers_in_one_group_store_every_event_once(client_settings: Settings, tmp_path: Path) -> None:
    """Two consumers in one group, one joining and one leaving mid-stream, together store each event once."""
    messages = _events(30_000)
    # no --exit-when-idle: on a loaded machine the second can take longer to start than any idle
    # bound, and the first would leave before the last part is sent; it is stopped once all is stored
    first = _consumer(client_settings, tmp_path, "--segment-rows", "3000")
    _produce(client_settings, messages[:10_000])
    wait_until(lambda: _stored(tmp_path) > 0, "first commit", first)  # the first consumes before the second joins
    log = tmp_path / "second.log"
    second = _consumer(client_settings, tmp_path, "--segment-rows", "3000", log=log)  # joins: a rebalance
    _produce(client_settings, messages[10_000:20_000])
    wait_until(lambda: "assigned member=" in log.read_text(errors="replace"), "assignment of the second", second)
    second.send_signal(signal.SIGTERM)  # leaves cleanly mid-stream: another rebalance
    _produce(client_settings, messages[20_000:])
    # the events table itself: the holdings the second refreshed as it stopped stay behind until the first stops
    events = Store(tmp_path, holdings=False)
    wait_until(lambda: events.count() == 30_000, "all 30,000 stored", first, timeout_s=300)
    first.send_signal(signal.SIGTERM)
    out = _finish(first)
    assert second.wait(120) == 0
    out += log.read_text(errors="replace")
    ids = Store(tmp_path).event_ids()
    assert len(ids) == len(set(ids)) == 30_000 and set(ids) == {e for e, _, _ in messages}
    # kafka-python logs its own socket-teardown tracebacks; what must not appear is a failed listener
    assert out.count("revoked partitions=") >= 2 and "failed on_partitions_revoked" not in out


def test_duckdb_query_from_another_process_while_the_consumer_writes(kafka_settings: Settings, tmp_path: Path) -> None:
    """Another process's DuckDB query succeeds, repeatedly, while the consumer keeps committing."""
    messages = _events(30_000)
    # stopped by SIGTERM once all is stored: no idle bound to outlast while a query process starts
    consumer = _consumer(kafka_settings, tmp_path, "--segment-rows", "1000")
    query = (
        "import sys; from lineage.store import Store; s = Store(__import__('pathlib').Path(sys.argv[1])); "
        "print(s.count() if s.holds_events() else 0)"
    )
    counts: list[int] = []

    def count() -> int:
        got = subprocess.run(
            [sys.executable, "-c", query, str(tmp_path)], capture_output=True, text=True, timeout=120, check=True
        )
        counts.append(int(got.stdout))
        return counts[-1]

    producer = threading.Thread(target=_produce, args=(kafka_settings, messages[15_000:]))
    counted_all = False
    try:
        # a reader while part of the stream is stored, made certain: a loaded machine can start a query
        # process more slowly than the consumer stores all 30,000, so no query would fall in between
        _produce(kafka_settings, messages[:15_000])
        wait_until(lambda: _stored(tmp_path) == 15_000, "the first 15,000 stored", consumer, timeout_s=300)
        assert count() == 15_000
        producer.start()
        wait_until(lambda: count() == 30_000, "a count of all 30,000", consumer, timeout_s=300)
        counted_all = True
    finally:
        if producer.is_alive():
            producer.join()
        consumer.send_signal(signal.SIGTERM)
        if not counted_all:  # a failure above: leave no consumer running after the test
            consumer.communicate(timeout=120)
    _finish(consumer)
    assert counts == sorted(counts) and counts[-1] == 30_000


def test_backfill_from_an_avro_file_is_exact_and_sends_bad_records_on(kafka_settings: Settings, tmp_path: Path) -> None:
    """`lineage ingest --from-file` stores valid records once (even run twice) and dead-letters the invalid one."""
    events = sample_events()
    records = [to_record(e) for e in events]
    records.insert(3, {**to_record(events[0]), "event_id": new_event_id(), "categories": ["user.bogus"]})
    archive = tmp_path / "archive 2026.avro"
    CODEC.write_container(archive, records)
    command = [
        sys.executable, "-m", "lineage.cli", "ingest", "--from-file", str(archive), "--store", str(tmp_path / "s"),
        "--bootstrap-servers", kafka_settings.bootstrap_servers,
    ]  # fmt: skip
    env = {**os.environ, "LINEAGE_DEAD_LETTER_TOPIC": kafka_settings.dead_letter_topic}
    for _ in range(2):
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)
        assert proc.returncode == 0, proc.stderr
    assert sorted(Store(tmp_path / "s").event_ids()) == sorted(e.event_id for e in events)
    [letter] = list(read_messages(kafka_settings, kafka_settings.dead_letter_topic, idle_timeout_s=5))
    headers = dict(letter.headers)
    assert headers["lineage.field"] == b"categories" and headers["lineage.source.offset"] == b"3"
    assert headers["lineage.source.topic"].startswith(b"file.archive_2026.avro.")
    assert letter.value is not None and CODEC.decode_record(letter.value)["categories"] == ["user.bogus"]


def test_peak_memory_is_the_consumers_own() -> None:
    """A consumer started by a parent holding 400 MB reports its own peak, not the parent's."""
    ballast = bytearray(400 * 1024 * 1024)
    ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page so it is resident
    code = "from lineage.ingest.consumer import peak_rss_mb; print(peak_rss_mb())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert len(ballast) > 0
    # below the parent's 400 MB: its own (about 230 MB with pandas, which pyarrow.dataset imports
    # when installed: the test venv has it for Spark; a production install does not)
    assert float(child.stdout) < 300


def test_supervisor_runs_n_consumers_that_store_every_event_once(kafka_settings: Settings, tmp_path: Path) -> None:
    """``python -m consumers.ingest --processes 2`` runs two group members that together store each event once."""
    messages = _events(6_000)
    _produce(kafka_settings, messages)
    proc = _consumer(kafka_settings, tmp_path, "--processes", "2", "--exit-when-idle", "6", "--instance-id", "t")
    out = _finish(proc)
    ids = Store(tmp_path).event_ids()
    assert len(ids) == len(set(ids)) == 6_000, out
    # both children joined (each names its static member id in its log line)
    assert "t-0" in out and "t-1" in out, out


def test_supervisor_restarts_a_consumer_that_dies(kafka_settings: Settings, tmp_path: Path) -> None:
    """A supervised consumer killed with SIGKILL is started again, and the store still gets every event once."""
    messages = _events(6_000)
    proc = _consumer(kafka_settings, tmp_path, "--processes", "1", "--instance-id", "r")
    proc.kill()  # --processes 1 runs in-process: nothing to supervise
    proc.communicate(timeout=30)
    # no holdings maintainer beside them: the two children are the consumers (tests/cli/test_holdings_cli.py has one)
    proc = _consumer(
        kafka_settings, tmp_path, "--processes", "2", "--exit-when-idle", "8", "--instance-id", "r", "--no-holdings"
    )
    deadline = time.monotonic() + 60
    children: list[int] = []
    while time.monotonic() < deadline and len(children) < 2:
        children = child_pids(proc.pid)
        time.sleep(0.2)
    assert len(children) == 2
    os.kill(children[0], signal.SIGKILL)
    _produce(kafka_settings, messages)
    out = _finish(proc, timeout=180)
    assert "action=restart" in out
    ids = Store(tmp_path).event_ids()
    assert len(ids) == len(set(ids)) == 6_000, out
