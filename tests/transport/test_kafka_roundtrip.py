"""The emitter, the codec and ``lineage emit`` through a real Kafka broker, on each Kafka client."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lineage import BrokerUnavailableError, Codec, DeliveryError, Emitter, Settings
from lineage.contract.records import to_record
from lineage.transport.clients import event_sink
from lineage.transport.kafka import read_messages
from tests.fixtures import GOOD_LINE, KAFKA_CLIENTS, sample_events


def _read_all(settings: Settings, count: int) -> list[tuple[bytes | None, bytes]]:
    out = []
    for m in read_messages(settings, settings.topic, idle_timeout_s=10, max_messages=count):
        assert m.value is not None
        out.append((m.key, m.value))
    return out


def test_every_event_type_round_trips_through_the_broker(client_settings: Settings) -> None:
    """Each sample event emitted to Kafka is consumed and decodes equal to what was sent."""
    events = sample_events()
    with Emitter(system="checkout", region="CN", settings=client_settings) as emitter:
        receipts = [emitter.emit(e).result(20) for e in events]
    assert all(r.topic == client_settings.topic for r in receipts)
    codec = Codec()
    got = {codec.decode(v).event_id: (k, codec.decode(v)) for k, v in _read_all(client_settings, len(events))}
    assert {e.event_id: e for e in events} == {i: ev for i, (_, ev) in got.items()}
    for e in events:
        assert got[e.event_id][0] == (e.subject_id or e.holder.name).encode()


def test_one_subjects_events_keep_their_order(client_settings: Settings) -> None:
    """Events keyed by one subject land in one partition in the order sent."""
    with Emitter(system="web", region="CN", settings=client_settings) as emitter:
        for i in range(30):
            emitter.collected(
                "same-subject",
                ["user.contact.email"],
                purpose="essential.service",
                legal_basis="CONTRACT",
                retention_days=i,
            )
    partitions = set()
    order = []
    codec = Codec()
    for m in read_messages(client_settings, client_settings.topic, idle_timeout_s=10, max_messages=30):
        partitions.add(m.partition)
        assert m.value is not None
        order.append(codec.decode(m.value).retention_days)
    assert len(partitions) == 1 and order == list(range(30))


def test_both_clients_put_a_key_in_the_same_partition(kafka_settings: Settings) -> None:
    """A subject's events share a partition whichever client sent them (murmur2, as kafka-python places keys)."""
    keys = [f"user-{i}".encode() for i in range(40)]
    placed: dict[str, list[int]] = {}
    for client in KAFKA_CLIENTS:
        sink = event_sink(dataclasses.replace(kafka_settings, kafka_client=client))
        deliveries = [sink.send(kafka_settings.topic, key, b"x", f"{client}-{i}") for i, key in enumerate(keys)]
        placed[client] = [d.result(20).partition for d in deliveries]
        sink.close(10)
    assert len(set(placed["kafka-python"])) == 3  # the keys spread over the topic's three partitions
    assert placed["confluent"] == placed["kafka-python"]


def test_older_schema_message_from_the_broker_decodes(client_settings: Settings) -> None:
    """A v1-encoded message produced to Kafka decodes with the current reader."""
    codec = Codec()
    event = sample_events()[0]
    v1 = {k: v for k, v in to_record(event).items() if k not in ("linked_subject_ids", "age_band")}
    kafka_sink = event_sink(client_settings)
    kafka_sink.send(client_settings.topic, b"k", codec.encode_with(1, v1), event.event_id).result(20)
    kafka_sink.close(10)
    [(_, value)] = _read_all(client_settings, 1)
    decoded = codec.decode(value)
    assert decoded.event_id == event.event_id and decoded.linked_subject_ids == ()


@pytest.mark.parametrize("client", KAFKA_CLIENTS)
def test_dead_broker_fails_clearly_within_the_bound(client: str) -> None:
    """An emitter pointed at a port with no broker raises BrokerUnavailableError within the bound."""
    settings = Settings(bootstrap_servers="127.0.0.1:1", connect_timeout_s=2, kafka_client=client)
    start = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match=r"127\.0\.0\.1:1 within 2 s"):
        Emitter(system="web", region="CN", settings=settings)
    assert time.monotonic() - start < 9  # under the 10 s default: the bound was kept (slack for a loaded machine)


def test_emit_command_sends_good_lines_and_names_bad_ones(client_settings: Settings, tmp_path: Path) -> None:
    """`lineage emit` reports a bad line's number, exits 1, and still sends every good line (LINEAGE_KAFKA_CLIENT)."""
    kafka_settings = client_settings
    lines = [GOOD_LINE, GOOD_LINE.replace("user.contact.email", "user.emial"), "{oops", GOOD_LINE]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lineage.cli",
            "emit",
            str(path),
            "--system",
            "web",
            "--region",
            "CN",
            "--bootstrap-servers",
            kafka_settings.bootstrap_servers,
            "--topic",
            kafka_settings.topic,
        ],
        env={**os.environ, "LINEAGE_KAFKA_CLIENT": client_settings.kafka_client},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "line 2: categories='user.emial'" in proc.stderr and "did you mean 'user.contact.email'" in proc.stderr
    assert "line 3: not valid JSON" in proc.stderr
    assert "sent 2 event(s); 2 bad line(s)" in proc.stderr
    got = [Codec().decode(v).subject_id for _, v in _read_all(kafka_settings, 2)]
    assert got == ["u1", "u1"]


def test_delivery_failure_through_the_real_broker_names_the_topic(client_settings: Settings) -> None:
    """Sending to a topic the broker does not have fails within the bound with a DeliveryError naming it."""
    settings = dataclasses.replace(client_settings, topic="no.such.topic", connect_timeout_s=2)
    emitter = Emitter(system="web", region="CN", settings=settings)
    start = time.monotonic()
    with pytest.raises(DeliveryError, match="no.such.topic.*does it exist"):
        emitter.collected("u1", ["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT")
    assert time.monotonic() - start < 15  # half the 30 s default delivery bound: not waited out
    emitter.close()


_QUIET_SCRIPT = r"""
import sys
from lineage import Settings
from lineage.transport.clients import event_sink

settings = Settings(bootstrap_servers=sys.argv[1], topic=sys.argv[2], kafka_client="confluent")
sink = event_sink(settings)
for i in range(20):  # each send polls: librdkafka's log lines about the dead server are served meanwhile
    sink.send(settings.topic, b"k", b"v", f"e{i}").result(20)
sink.close(10)
"""


def test_librdkafka_says_nothing_on_stderr_unless_logging_is_configured(kafka_settings: Settings) -> None:
    """A dead bootstrap server beside a live one: librdkafka's complaint goes to a silent logger, not to stderr."""
    servers = "127.0.0.1:1," + kafka_settings.bootstrap_servers
    proc = subprocess.run(
        [sys.executable, "-c", _QUIET_SCRIPT, servers, kafka_settings.topic],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_a_full_local_queue_waits_for_room_instead_of_failing(
    kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With librdkafka's queue held to 5 messages, 200 quick sends wait for room and are all acknowledged."""
    from lineage.transport.confluent import producer

    small = producer.producer_config
    monkeypatch.setattr(
        producer, "producer_config", lambda s, **kw: small(s, **kw) | {"queue.buffering.max.messages": 5}
    )
    sink = event_sink(dataclasses.replace(kafka_settings, kafka_client="confluent"))
    deliveries = [sink.send(kafka_settings.topic, b"k", b"v", f"e{i}") for i in range(200)]
    sink.flush(60)
    assert [d.result(0).offset for d in deliveries] == list(range(200))  # one key: one partition, in order
    assert sink.failures() == []
    sink.close(10)


def _rdkafka_threads() -> int:
    """How many of the test process's native threads are librdkafka's (named rdk:...; not Python threads).

    Counted by name: another test's thread ending meanwhile would change a count of all threads.
    """
    count = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm", encoding="utf-8") as comm:
                count += comm.read().startswith("rdk:")
        except FileNotFoundError:  # the thread ended while we looked
            continue
    return count


def test_closing_a_confluent_sink_ends_librdkafkas_threads(kafka_settings: Settings) -> None:
    """After close() the producer's native threads are gone, though the sink object is still referenced."""
    settings = dataclasses.replace(kafka_settings, kafka_client="confluent")
    before = _rdkafka_threads()
    sink = event_sink(settings)
    sink.send(settings.topic, b"k", b"v", "e1").result(20)
    assert _rdkafka_threads() > before  # librdkafka runs its own threads
    sink.close(10)
    deadline = time.monotonic() + 60
    while _rdkafka_threads() > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _rdkafka_threads() == before
    with pytest.raises(DeliveryError, match="closed"):
        sink.send(settings.topic, b"k", b"v", "e2")


def test_a_group_reader_reads_every_message_and_a_topic_without_partitions_reads_empty(
    kafka_settings: Settings,
) -> None:
    """read_messages with a group reads the topic from the start; an unknown topic is read as empty, not an error."""
    events = sample_events()[:5]
    with Emitter(system="checkout", region="CN", settings=kafka_settings) as emitter:
        for e in events:
            emitter.emit(e).result(20)
    group = kafka_settings.topic + ".tail"
    read = read_messages(kafka_settings, kafka_settings.topic, group_id=group, idle_timeout_s=5)
    assert sorted(Codec().decode(m.value).event_id for m in read if m.value) == sorted(e.event_id for e in events)
    unknown = dataclasses.replace(kafka_settings, topic=kafka_settings.topic + ".none")
    assert list(read_messages(unknown, unknown.topic, idle_timeout_s=2)) == []


def test_each_send_carries_the_headers_it_was_given(client_settings: Settings) -> None:
    """Headers reach the broker as given at each send: a tuple reused, then a list the caller changes between sends."""
    sink = event_sink(client_settings)
    same = (("lineage.via", b"sdk"), ("n", b"0"))
    changing: list[tuple[str, bytes]] = [("lineage.via", b"sdk"), ("n", b"1")]
    deliveries = [sink.send(client_settings.topic, b"k", b"a", "a", same)]
    deliveries.append(sink.send(client_settings.topic, b"k", b"b", "b", changing))  # type: ignore[arg-type]
    changing[1] = ("n", b"2")
    deliveries.append(sink.send(client_settings.topic, b"k", b"c", "c", changing))  # type: ignore[arg-type]
    deliveries.append(sink.send(client_settings.topic, b"k", b"d", "d", same))
    for d in deliveries:
        d.result(20)
    sink.close(10)
    got = {m.value: dict(m.headers)["n"] for m in read_messages(client_settings, client_settings.topic,
                                                                idle_timeout_s=10, max_messages=4)}  # fmt: skip
    assert got == {b"a": b"0", b"b": b"1", b"c": b"2", b"d": b"0"}
