"""Dead letters that cannot go out as they are: too large for the broker, or no topic/broker to take them."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import kafka
from kafka.admin import NewTopic

from lineage import Codec, Settings
from lineage.contract.records import new_event_id, to_record
from lineage.store import Store
from lineage.transport.kafka import create_topics, read_messages, topic_exists
from tests.fixtures import sample_events, stored_offsets, wait_until

CODEC = Codec()
REPO = Path(__file__).parents[2]
BIG = 3 * 1024 * 1024  # a topic that takes 3 MB messages, while its dead-letter topic keeps the default 1 MB


def _valid(n: int) -> list[tuple[str, bytes]]:
    """(event id, value) for n valid events, each with a fresh id."""
    out = []
    for _ in range(n):
        record = {**to_record(sample_events()[0]), "event_id": new_event_id()}
        out.append((record["event_id"], CODEC.encode_record(record)))
    return out


def _produce(settings: Settings, values: list[bytes]) -> None:
    """Send raw values, all with one key (so one partition, offsets in order), allowing big messages."""
    producer = kafka.KafkaProducer(bootstrap_servers=settings.bootstrap_servers.split(","), max_request_size=BIG)
    for value in values:
        producer.send(settings.topic, key=b"one-key", value=value)
    producer.flush(60)
    producer.close(10)


def _ingest_command(settings: Settings, store: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lineage.cli", "ingest", "--store", str(store), "--topic", settings.topic,
            "--bootstrap-servers", settings.bootstrap_servers, "--group", settings.topic + ".g", *extra]  # fmt: skip


def _ingest_env(settings: Settings, *, failing: bool = False) -> dict[str, str]:
    # short bounds only where a delivery must fail (soon after its topic is deleted); a run that must
    # succeed gets bounds a broker at load 10 meets (a 1.5 MB dead letter within 5 s may not be)
    connect, deliver = ("3", "5") if failing else ("20", "60")
    return {**os.environ, "LINEAGE_DEAD_LETTER_TOPIC": settings.dead_letter_topic, "LINEAGE_CONNECT_TIMEOUT_S": connect,
            "LINEAGE_DELIVERY_TIMEOUT_S": deliver, "LINEAGE_KAFKA_CLIENT": settings.kafka_client}  # fmt: skip


def _ingest(settings: Settings, store: Path) -> subprocess.CompletedProcess[str]:
    command = _ingest_command(settings, store, "--exit-when-idle", "4")
    return subprocess.run(command, cwd=REPO, env=_ingest_env(settings), capture_output=True, text=True, timeout=180,
                          check=False)  # fmt: skip


def test_a_dead_letter_too_large_for_its_topic_goes_out_truncated_with_its_digest(
    client_settings: Settings, tmp_path: Path
) -> None:
    """A 1.5 MB bad message on a topic allowing 3 MB is dead-lettered truncated, with digest, size and source."""
    settings = _with_topic(client_settings)
    before, after = _valid(5), _valid(5)
    garbage = os.urandom(1536 * 1024)
    _produce(settings, [v for _, v in before] + [garbage] + [v for _, v in after])
    done = _ingest(settings, tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(Store(tmp_path).event_ids()) == sorted(e for e, _ in before + after)
    [letter] = list(read_messages(settings, settings.dead_letter_topic, idle_timeout_s=5))
    headers = dict(letter.headers)
    assert headers["lineage.truncated"] == b"true"
    assert int(headers["lineage.original.size"]) == len(garbage)
    assert headers["lineage.original.sha256"].decode() == hashlib.sha256(garbage).hexdigest()
    assert headers["lineage.source.topic"].decode() == settings.topic and headers["lineage.source.offset"] == b"5"
    assert letter.value is not None and 0 < len(letter.value) < 1024 * 1024 and garbage.startswith(letter.value)


def _with_topic(settings: Settings) -> Settings:
    """``settings`` with a fresh one-partition event topic taking messages up to ``BIG`` bytes."""
    import dataclasses

    big = dataclasses.replace(settings, topic=settings.topic + ".big")
    admin = kafka.KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers.split(","))
    try:
        admin.create_topics([NewTopic(big.topic, 1, 1, topic_configs={"max.message.bytes": str(BIG)})])
    finally:
        admin.close()
    return big


def test_a_failed_dead_letter_is_never_skipped(client_settings: Settings, tmp_path: Path) -> None:
    """Dead-letter topic deleted mid-run: ingest exits 2 storing nothing from the bad offset on; a re-run sends it."""
    settings = _with_topic(client_settings)
    before, after = _valid(5), _valid(5)
    _produce(settings, [v for _, v in before])
    proc = subprocess.Popen(_ingest_command(settings, tmp_path), cwd=REPO, env=_ingest_env(settings, failing=True),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    # the consumer is running and has stored the first five events
    wait_until(lambda: stored_offsets(tmp_path).get((settings.topic, 0), 0) >= 5, "first five stored", proc)
    admin = kafka.KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers.split(","))
    try:
        admin.delete_topics([settings.dead_letter_topic])
    finally:
        admin.close()
    wait_until(lambda: not topic_exists(settings, settings.dead_letter_topic), "dead-letter topic deleted", proc)
    _produce(settings, [b"not an event"] + [v for _, v in after])
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "Traceback" not in err, err
    assert "dead letter" in err.strip().splitlines()[-1], err
    assert stored_offsets(tmp_path)[(settings.topic, 0)] == 5  # the bad message's offset is not passed
    create_topics(settings, [settings.dead_letter_topic], partitions=1)
    done = _ingest(settings, tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(Store(tmp_path).event_ids()) == sorted(e for e, _ in before + after)
    [letter] = list(read_messages(settings, settings.dead_letter_topic, idle_timeout_s=5))
    assert letter.value == b"not an event" and dict(letter.headers)["lineage.source.offset"] == b"5"


def _backfill(archive: Path, store: Path, bootstrap: str, dead_letter_topic: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lineage.cli", "ingest", "--from-file", str(archive), "--store", str(store),
         "--bootstrap-servers", bootstrap],
        cwd=REPO, env={**os.environ, "LINEAGE_DEAD_LETTER_TOPIC": dead_letter_topic, "LINEAGE_CONNECT_TIMEOUT_S": "2"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _archive(path: Path, *, bad_at: int | None) -> list[str]:
    """An Avro container of valid events (one invalid record at ``bad_at``); the valid events' ids."""
    records = [{**to_record(e), "event_id": new_event_id()} for e in sample_events()]
    if bad_at is not None:
        records.insert(bad_at, {**records[0], "event_id": new_event_id(), "categories": ["user.bogus"]})
    CODEC.write_container(path, records)
    return [r["event_id"] for r in records if r["categories"] != ["user.bogus"]]


def test_a_backfill_of_valid_records_needs_no_broker(tmp_path: Path) -> None:
    """`ingest --from-file` with every record valid stores them all with no broker reachable."""
    ids = _archive(tmp_path / "a.avro", bad_at=None)
    done = _backfill(tmp_path / "a.avro", tmp_path / "s", "127.0.0.1:1", "nowhere.dlq")
    assert done.returncode == 0, done.stderr
    assert sorted(Store(tmp_path / "s").event_ids()) == sorted(ids)


def test_a_backfill_dead_letter_without_its_topic_or_broker_fails_in_one_line(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """No dead-letter topic or no broker: one line, exit 2, nothing stored past the bad record; a re-run ends it."""
    ids = _archive(tmp_path / "a.avro", bad_at=3)
    missing = kafka_settings.topic + ".no-such-dlq"
    for bootstrap, topic in ((kafka_settings.bootstrap_servers, missing), ("127.0.0.1:1", missing)):
        failed = _backfill(tmp_path / "a.avro", tmp_path / "s", bootstrap, topic)
        assert failed.returncode == 2, failed.stderr
        [line] = [x for x in failed.stderr.splitlines() if x.strip()]
        assert "Traceback" not in line and ("dead-letter" in line or "no Kafka broker" in line), line
        assert all(nxt <= 3 for nxt in stored_offsets(tmp_path / "s").values())  # nothing stored past the bad record
    assert "dead-letter topic" in _backfill(tmp_path / "a.avro", tmp_path / "s", kafka_settings.bootstrap_servers,
                                            missing).stderr  # fmt: skip
    done = _backfill(tmp_path / "a.avro", tmp_path / "s", kafka_settings.bootstrap_servers,
                     kafka_settings.dead_letter_topic)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(Store(tmp_path / "s").event_ids()) == sorted(ids)
    [letter] = list(read_messages(kafka_settings, kafka_settings.dead_letter_topic, idle_timeout_s=5))
    assert dict(letter.headers)["lineage.source.offset"] == b"3"


def test_fit_cuts_only_what_does_not_fit() -> None:
    """A letter that fits goes as it is; an oversized one keeps a prefix, and its oversized headers are dropped."""
    from lineage.contract.events import DeadLetter
    from lineage.transport.kafka.dead_letters import fit

    small = DeadLetter("t", 0, 7, b"k", b"abc", (("h", b"v"),), "bad header")
    key, value_sent, headers = fit(small, 1_000_000)
    assert (key, value_sent, headers[0]) == (b"k", b"abc", ("h", b"v")) and "lineage.truncated" not in dict(headers)
    value = os.urandom(50_000)
    big = DeadLetter("t", 0, 7, b"k", value, (("h", b"x" * 40_000),), "bad " * 1000)
    key, cut, headers = fit(big, 20_000)
    named = dict(headers)
    assert cut is not None and value.startswith(cut) and 0 < len(cut) < 20_000 and key == b"k"
    assert named["lineage.original.sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert named["lineage.original.headers.dropped"] == b"1" and "h" not in named
    assert len(cut) + sum(len(k) + len(v) for k, v in headers) + len(key) < 20_000
