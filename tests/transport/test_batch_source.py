"""The ingest consumer's group member on each Kafka client: where it starts, what it reads, its lag."""

from __future__ import annotations

import dataclasses

import pytest

from lineage import BrokerError, Emitter, Settings
from lineage.transport.clients import batch_source
from lineage.transport.confluent import ConfluentBatchSource
from lineage.transport.kafka import KafkaBatchSource
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
