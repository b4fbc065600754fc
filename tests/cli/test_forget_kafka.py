"""``lineage forget --bootstrap-servers``: the certificate states the topics' retention; past it, no broker file."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from lineage import Codec, default_taxonomy
from lineage.contract.records import make_record
from lineage.devtools.local_broker import LocalBroker, fetch_jars
from lineage.ingest.consumer import IngestConsumer
from lineage.settings import Settings
from lineage.store import StoreLocation
from lineage.store.certificate import certificates
from lineage.transport.kafka import KafkaEventSink
from lineage.transport.kafka.admin import create_topics
from tests.fixtures import run_cli, store_of, wait_until

pytestmark = pytest.mark.integration


def test_the_certificate_states_the_topics_retention_read_from_the_broker(
    tmp_path: Path, kafka_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dead-letter topic set to one hour and the event topic's default are both in the certificate."""
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    try:
        admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, kafka_settings.dead_letter_topic, {"retention.ms": "3600000"})]
        )
    finally:
        admin.close()
    record = make_record("COLLECTED", system="app", system_region="CN", subject_id="acct-1",
                         categories=["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT",
                         source="direct", occurred_at=datetime(2026, 5, 1, tzinfo=UTC))  # fmt: skip
    store_of([record], tmp_path / "s")
    monkeypatch.setenv("LINEAGE_DEAD_LETTER_TOPIC", kafka_settings.dead_letter_topic)
    kafka = ("--bootstrap-servers", kafka_settings.bootstrap_servers, "--topic", kafka_settings.topic)
    code, out, err = run_cli(capsys, "forget", "acct-1", "--case", "K-1", "--store", str(tmp_path / "s"), *kafka)
    assert code == 0, err
    [cert] = certificates(StoreLocation.embedded(tmp_path / "s"), case_ref="K-1")[-1:]
    assert f"{kafka_settings.dead_letter_topic}: gone within 0.0416667 day(s)" in cert.kafka_bound
    assert "(retention.ms=3600000)" in cert.kafka_bound
    assert f"{kafka_settings.topic}: gone within" in cert.kafka_bound and cert.kafka_bound in out


def _holding(folder: Path, identifier: bytes) -> list[str]:
    """The broker's files under ``folder`` whose bytes hold ``identifier`` (segments, indexes, snapshots)."""
    found = []
    for path in folder.rglob("*"):
        try:
            if path.is_file() and identifier in path.read_bytes():
                found.append(str(path.relative_to(folder)))
        except OSError:  # a segment the broker deleted while we listed it
            continue
    return found


def test_after_the_bound_no_file_of_the_broker_holds_the_identifier(tmp_path: Path) -> None:
    """Topics with a 5 s retention: after forget, within the stated bound, no broker file holds the person."""
    cache = Path(os.environ.get("LINEAGE_CACHE_DIR", Path(__file__).parents[2] / ".cache"))
    # the broker checks retention every second (300 s by default), a setting it reads only at start
    broker = LocalBroker(fetch_jars(cache), tmp_path / "kafka", properties={"log.retention.check.interval.ms": "1000"})
    try:
        broker.start()
    except Exception as exc:  # fail loudly, never skip
        pytest.fail(f"no Kafka broker could be started: {exc}", pytrace=False)
    try:
        settings = Settings(
            bootstrap_servers=broker.bootstrap_servers,
            topic="proof.events",
            dead_letter_topic="proof.events.dlq",
            connect_timeout_s=20,
            store_dir=tmp_path / "s",
        )
        create_topics(settings, [settings.topic, settings.dead_letter_topic], partitions=1)
        admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        try:
            bound = {"retention.ms": "5000", "file.delete.delay.ms": "0"}
            admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, t, bound)
                                 for t in (settings.topic, settings.dead_letter_topic)])  # fmt: skip
        finally:
            admin.close()
        person = f"acct-{uuid.uuid4().hex}"
        record = make_record("COLLECTED", system="app", system_region="CN", subject_id=person,
                             categories=["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT",
                             source="direct", occurred_at=datetime(2026, 5, 1, tzinfo=UTC))  # fmt: skip
        sink = KafkaEventSink(settings)
        sink.send(settings.topic, person.encode(), Codec().encode_record(record), record["event_id"])
        sink.send(settings.topic, person.encode(), b"not an event of " + person.encode(), "bad-1")  # a dead letter
        sink.flush(60)
        assert sink.failures() == []
        sink.close(10)
        consumer = IngestConsumer(settings, store_dir=settings.store_dir, group_id="proof", taxonomy=default_taxonomy())
        consumer.run(threading.Event(), idle_exit_s=5)
        wait_until(lambda: bool(_holding(broker.data_dir, person.encode())), "the broker holds the person's event")
        kafka = ("--bootstrap-servers", settings.bootstrap_servers, "--topic", settings.topic)
        env = {**os.environ, "LINEAGE_DEAD_LETTER_TOPIC": settings.dead_letter_topic}
        done = subprocess.run([sys.executable, "-m", "lineage.cli", "forget", person, "--case", "K-2",
                               "--store", str(settings.store_dir), *kafka], capture_output=True, text=True,
                              env=env, timeout=600, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "retention.ms=5000" in done.stdout and person not in done.stdout + done.stderr
        wait_until(lambda: not _holding(broker.data_dir, person.encode()),
                   "the broker's retention removes every file holding the person", timeout_s=300)  # fmt: skip
        store = StoreLocation.embedded(settings.store_dir)
        assert [c.status for c in certificates(store, case_ref="K-2")][-1] == "done"
    finally:
        broker.stop()
