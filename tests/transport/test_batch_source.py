"""The ingest consumer's group member on each Kafka client: where it starts, what it reads, its lag."""

from __future__ import annotations

import dataclasses

import pytest

from lineage import BrokerError, Emitter, Settings
from lineage.transport.clients import batch_source
from lineage.transport.confluent import ConfluentBatchSource
from lineage.transport.kafka import KafkaBatchSource
from lineage.transport.source import RawMessage
from tests.fixtures import sample_events, wait_until

pytestmark = pytest.mark.integration


class _StartAtOne:
    """A listener that starts every partition at offset 1, and records what it was told."""

    def __init__(self) -> None:
        self.assigned_to: list[int] = []
        self.revoked_from: list[int] = []

    def assigned(self, partitions: list[int]) -> dict[int, int]:
        """Start each at offset 1 (the first message is skipped)."""
        self.assigned_to += partitions
        return {p: 1 for p in partitions}

    def revoked(self, partitions: list[int]) -> None:
        """Record the partitions leaving."""
        self.revoked_from += partitions


class _FromTheStart(_StartAtOne):
    """A listener that starts every partition at its beginning."""

    def assigned(self, partitions: list[int]) -> dict[int, int]:
        """Start each at its beginning."""
        super().assigned(partitions)
        return {}


def test_a_batch_source_starts_where_the_listener_says_and_reads_to_no_lag(client_settings: Settings) -> None:
    """Every partition starts at the listener's offset; all after it is read, lag ends at 0, commits are taken."""
    events = sample_events()
    with Emitter(system="checkout", region="CN", settings=client_settings) as emitter:
        receipts = [emitter.emit(e).result(20) for e in events]
    ends: dict[int, int] = {}
    for r in receipts:
        ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)
    listener = _StartAtOne()
    source = batch_source(client_settings, client_settings.topic + ".g", listener, max_poll_records=7)
    expected = {ConfluentBatchSource if client_settings.kafka_client == "confluent" else KafkaBatchSource}
    assert {type(source)} == expected
    read: dict[int, list[int]] = {}
    try:
        want = sum(end - 1 for end in ends.values())

        def done() -> bool:
            batch = source.poll(0.5)
            assert len(batch) <= 7
            for m in batch:
                read.setdefault(m.partition, []).append(m.offset)
            return sum(len(v) for v in read.values()) >= want

        wait_until(done, "every message after offset 1 read")
        assert read == {p: list(range(1, end)) for p, end in ends.items() if end > 1}
        assert sorted(listener.assigned_to) == [0, 1, 2]
        assert source.lag() == {0: 0, 1: 0, 2: 0}
        source.commit({p: end for p, end in ends.items()})
    finally:
        source.close()


def test_a_batch_source_on_a_group_it_may_not_join_fails_in_one_line(client_settings: Settings) -> None:
    """An unknown bootstrap server is BrokerError naming it, on either client (the shared wait, before joining)."""
    nowhere = dataclasses.replace(client_settings, bootstrap_servers="127.0.0.1:1", connect_timeout_s=1)
    with pytest.raises(BrokerError) as caught:
        batch_source(nowhere, "g", _StartAtOne(), max_poll_records=10)
    assert "127.0.0.1:1" in str(caught.value) and "\n" not in str(caught.value)


def test_lag_reaches_zero_when_what_was_left_to_read_was_deleted(client_settings: Settings) -> None:
    """The store says start at 1; retention has deleted offsets 0-4 since: nothing is left, so lag is 0 (idle exits)."""
    from confluent_kafka import Producer, TopicPartition
    from confluent_kafka.admin import AdminClient

    producer = Producer({"bootstrap.servers": client_settings.bootstrap_servers})
    for i in range(5):
        producer.produce(client_settings.topic, value=b"x", key=str(i).encode(), partition=0)
    assert producer.flush(30) == 0
    admin = AdminClient({"bootstrap.servers": client_settings.bootstrap_servers})
    for done in admin.delete_records([TopicPartition(client_settings.topic, 0, 5)]).values():
        done.result(30)
    source = batch_source(client_settings, client_settings.topic + ".g", _StartAtOne(), max_poll_records=10)
    try:

        def caught_up() -> bool:
            assert source.poll(0.5) == []
            lag = source.lag()
            return bool(lag) and not any(lag.values())

        wait_until(caught_up, "lag 0 on every partition")
    finally:
        source.close()


@pytest.mark.parametrize(
    "client",
    [
        pytest.param("kafka-python", marks=pytest.mark.xfail(
            strict=True, reason="kafka-python's fetcher refuses the whole batch (CorruptRecordError): BrokerError")),
        "confluent",
    ],
)  # fmt: skip
def test_a_header_name_that_is_not_utf8_is_read_as_unusable_provenance(kafka_settings: Settings, client: str) -> None:
    """Headers are untrusted: a name of raw bytes does not stop the source; the message comes with bad provenance."""
    import kafka

    from lineage.transport.provenance import read_provenance

    class _RawName(str):  # kafka-python writes header names with .encode(): this one writes bytes not UTF-8
        def encode(self, *args: object, **kwargs: object) -> bytes:  # type: ignore[override]
            return b"\xff\xfe"

    producer = kafka.KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    producer.send(kafka_settings.topic, b"x", partition=0, headers=[(_RawName("k"), b"v")]).get(30)
    producer.close()
    settings = dataclasses.replace(kafka_settings, kafka_client=client)
    source = batch_source(settings, settings.topic + ".g", _FromTheStart(), max_poll_records=10)
    got: list[RawMessage] = []
    try:
        wait_until(lambda: bool(got.extend(source.poll(0.5)) or got), "the message read")
    finally:
        source.close()
    assert read_provenance(got[0].headers).bad == 1
