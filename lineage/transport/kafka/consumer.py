"""The batch consumer: a group member that polls batches and lets the store decide where to start."""

from __future__ import annotations

import logging
from typing import Any

import kafka
import kafka.errors
from kafka import ConsumerRebalanceListener, OffsetAndMetadata, TopicPartition

from lineage.errors import BrokerError, BrokerUnavailableError
from lineage.settings import Settings
from lineage.transport.kafka.connection import client_options, refusal, wait_for_broker
from lineage.transport.source import PartitionListener, RawMessage

__all__ = ["KafkaBatchSource", "PartitionListener", "RawMessage"]

log = logging.getLogger(__name__)


class KafkaBatchSource:
    """A group member on one topic that polls batches and commits after the store has them."""

    def __init__(
        self,
        settings: Settings,
        group_id: str,
        listener: PartitionListener,
        max_poll_records: int,
        instance_id: str | None = None,
    ) -> None:
        """Join ``group_id`` on ``settings.topic``; ``listener`` decides where each partition starts.

        With ``instance_id`` (static membership) a restarted process takes its partitions back at
        once instead of waiting for the old session to expire.
        """
        wait_for_broker(settings)
        self.topic = settings.topic
        self._settings = settings
        self._group = group_id
        try:
            self._consumer = kafka.KafkaConsumer(
                **client_options(settings),
                group_id=group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=max_poll_records,
                group_instance_id=instance_id,
                session_timeout_ms=10_000,  # a killed member's partitions move on within 10 s
                heartbeat_interval_ms=3_000,
                # fetched-but-unread data is held as Python objects (~3x its size): these bound it
                fetch_max_bytes=16 * 1024 * 1024,
                max_partition_fetch_bytes=4 * 1024 * 1024,
            )
        except kafka.errors.KafkaError as exc:
            raise refusal(exc, settings, operation="read", group=group_id) or BrokerUnavailableError(
                settings.bootstrap_servers, settings.connect_timeout_s, str(exc)
            ) from exc
        self._consumer.subscribe([self.topic], listener=_Rebalance(self, listener))

    def poll(self, timeout_s: float) -> list[RawMessage]:
        """Up to ``max_poll_records`` messages, in offset order within each partition."""
        try:
            batches = self._consumer.poll(timeout_ms=int(timeout_s * 1000))
        except kafka.errors.KafkaError as exc:
            raise refusal(exc, self._settings, operation="read", topic=self.topic, group=self._group) or BrokerError(
                f"polling {self.topic} failed: {exc}"
            ) from exc
        out: list[RawMessage] = []
        for records in batches.values():
            out.extend(records)
        return out

    def seek(self, partition: int, offset: int | None) -> None:
        """Continue ``partition`` from ``offset`` (None: from the beginning)."""
        tp = TopicPartition(self.topic, partition)
        if offset is None:
            self._consumer.seek_to_beginning(tp)
        else:
            self._consumer.seek(tp, offset)

    def commit(self, offsets: dict[int, int]) -> None:
        """Record next offsets in Kafka too, for lag tools; the store's segment names stay the truth."""
        if not offsets:
            return
        try:
            self._consumer.commit(
                {TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()}
            )
        except kafka.errors.KafkaError as exc:  # a rebalance in flight: the next commit covers it
            log.warning("offset commit skipped: %s", exc)

    def lag(self) -> dict[int, int]:
        """Messages behind the end of each assigned partition."""
        assigned = list(self._consumer.assignment())
        if not assigned:
            return {}
        try:
            ends = self._consumer.end_offsets(assigned)
            return {tp.partition: max(0, ends[tp] - self._consumer.position(tp)) for tp in assigned}
        except kafka.errors.KafkaError as exc:
            raise BrokerError(f"reading the end offsets of {self.topic} failed: {exc}") from exc

    def close(self) -> None:
        """Leave the group."""
        self._consumer.close(autocommit=False)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, source: KafkaBatchSource, listener: PartitionListener) -> None:
        self._source = source
        self._listener = listener

    def on_partitions_revoked(self, revoked: Any) -> None:
        partitions = sorted(tp.partition for tp in revoked)
        if partitions:
            self._listener.revoked(partitions)

    def on_partitions_assigned(self, assigned: Any) -> None:
        partitions = sorted(tp.partition for tp in assigned)
        starts = self._listener.assigned(partitions)
        for p in partitions:
            self._source.seek(p, starts.get(p))
