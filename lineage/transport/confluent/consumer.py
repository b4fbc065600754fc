"""The batch consumer on librdkafka: the twin of ``lineage.transport.kafka.consumer``, same promises.

A group member on one topic. When the group gives it partitions, the listener (the ingest
consumer) says where each starts: the store's offsets are the truth, so each partition is assigned
from there (or its beginning), never from the group's committed offsets. Revoked or lost
partitions are handed back to the listener first. Offsets committed to Kafka are for lag tools.

librdkafka fetches ahead in its own threads, in C, into a queue bounded here (``queued.max.
messages.kbytes``); ``consume`` hands a batch over in one call. Its messages expose methods, not
attributes: each is copied into a small slotted ``_Message`` (a ``RawMessage``) once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from lineage.errors import BrokerError, BrokerUnavailableError
from lineage.settings import Settings
from lineage.transport.confluent.connection import client_config, describe, refusal
from lineage.transport.kafka.connection import wait_for_broker
from lineage.transport.provenance import VIA
from lineage.transport.source import PartitionListener, RawMessage

__all__ = ["ConfluentBatchSource"]

log = logging.getLogger(__name__)
_WATERMARK_TIMEOUT_S = 5.0
# headers librdkafka cannot hand over (a name that is not UTF-8 makes m.headers() raise): read as an
# unusable provenance, stored as null and counted, instead of stopping the consumer on that message
_UNREADABLE: Sequence[tuple[str, bytes]] = ((VIA, b"\xff"),)


class _Message:
    """One message read, as a ``RawMessage``: where it is, and what."""

    __slots__ = ("headers", "key", "offset", "partition", "topic", "value")

    def __init__(self, m: Message, *, unreadable: bool = False) -> None:
        self.topic: str = m.topic() or ""
        self.partition: int = m.partition() or 0
        self.offset: int = m.offset() or 0
        self.key: bytes | None = m.key()
        self.value: bytes | None = m.value()
        # a list of (name, value) pairs, values bytes or None, as kafka-python gives them
        if unreadable:
            self.headers = _UNREADABLE
            return
        try:
            self.headers = cast("Sequence[tuple[str, bytes]]", m.headers() or ())
        except (SystemError, UnicodeDecodeError, ValueError):
            self.headers = _UNREADABLE


class ConfluentBatchSource:
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
        self._listener = listener
        self._batch = max_poll_records
        self._starts: dict[int, int | None] = {}  # where each assigned partition was started from
        config = client_config(settings) | {
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10_000,  # a killed member's partitions move on within 10 s
            "heartbeat.interval.ms": 3_000,
            # fetched-but-unread messages wait in librdkafka's one queue: about 16 MiB, overshot by at most
            # one fetch response (16 MiB), whatever the number of partitions
            "fetch.max.bytes": 16 * 1024 * 1024,
            "max.partition.fetch.bytes": 4 * 1024 * 1024,
            "queued.max.messages.kbytes": 16 * 1024,
            # past that bound librdkafka stops fetching for this long (1 s by default): at the default
            # one process read in bursts, half idle, at a third of its rate (docs/operations.md)
            "fetch.queue.backoff.ms": 20,
        }
        if instance_id is not None:
            config["group.instance.id"] = instance_id
        try:
            self._consumer = Consumer(config)
            self._consumer.subscribe([self.topic], on_assign=self._assigned, on_revoke=self._revoked,
                                     on_lost=self._revoked)  # fmt: skip
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            raise refusal(error, settings, operation="read", group=group_id) or BrokerUnavailableError(
                settings.bootstrap_servers, settings.connect_timeout_s, describe(error)
            ) from exc

    def poll(self, timeout_s: float) -> list[RawMessage]:
        """Up to ``max_poll_records`` messages, in offset order within each partition."""
        try:
            messages = self._consumer.consume(num_messages=self._batch, timeout=timeout_s)
        except KafkaException as exc:
            raise self._failure(exc.args[0]) from exc
        out: list[RawMessage] = []
        for m in messages:
            error = m.error()
            if error is None:
                try:
                    out.append(_Message(m))
                # headers() can leave its UnicodeDecodeError set, raised as SystemError on return (seen in CI)
                except SystemError:
                    out.append(_Message(m, unreadable=True))
            elif error.code() == KafkaError._PARTITION_EOF:
                continue
            elif error.fatal() or refusal(error, self._settings) is not None:
                raise self._failure(error)
            else:  # librdkafka retries these itself (a broker going away, a leader moving)
                log.warning("reading %s: %s", self.topic, describe(error))
        return out

    def seek(self, partition: int, offset: int | None) -> None:
        """Continue ``partition`` from ``offset`` (None: from the beginning); it must be fetching already."""
        try:
            self._consumer.seek(TopicPartition(self.topic, partition, OFFSET_BEGINNING if offset is None else offset))
        except KafkaException as exc:
            raise self._failure(exc.args[0]) from exc
        self._starts[partition] = offset

    def commit(self, offsets: dict[int, int]) -> None:
        """Record next offsets in Kafka too, for lag tools; the store's segment names stay the truth."""
        if not offsets:
            return
        try:
            self._consumer.commit(
                offsets=[TopicPartition(self.topic, p, o) for p, o in offsets.items()], asynchronous=False
            )
        except KafkaException as exc:  # a rebalance in flight: the next commit covers it
            log.warning("offset commit skipped: %s", describe(exc.args[0]))

    def lag(self) -> dict[int, int]:
        """Messages behind the end of each assigned partition.

        The end is the high watermark the last fetch response carried (no request: asking the broker
        for each partition in turn waited behind the long-poll fetch, ~0.5 s a partition); only a
        partition not fetched yet is asked for. Where the log now starts past the reading position
        (retention deleted what was unread), what is left starts at the log's start.
        """
        try:
            assigned = self._consumer.assignment()
            if not assigned:
                return {}
            lag: dict[int, int] = {}
            for tp in self._consumer.position(assigned):
                low, high = self._consumer.get_watermark_offsets(tp, cached=True)
                if high < 0 or low < 0:  # nothing fetched for it yet: ask once
                    low, high = self._consumer.get_watermark_offsets(tp, timeout=_WATERMARK_TIMEOUT_S, cached=False)
                if tp.offset >= 0:  # read from here on
                    at = tp.offset
                else:  # nothing read yet: where it was started
                    start = self._starts.get(tp.partition)
                    at = low if start is None else start
                lag[tp.partition] = max(0, high - max(at, low))
            return lag
        except KafkaException as exc:
            raise BrokerError(f"reading the end offsets of {self.topic} failed: {describe(exc.args[0])}") from exc

    def close(self) -> None:
        """Leave the group."""
        self._consumer.close()

    # -- rebalances: called from inside consume() --------------------------------------------

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = sorted(tp.partition for tp in partitions)
        starts = self._listener.assigned(numbers)
        for tp in partitions:
            start = starts.get(tp.partition)
            self._starts[tp.partition] = start
            tp.offset = OFFSET_BEGINNING if start is None else start
        consumer.assign(partitions)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = sorted(tp.partition for tp in partitions)
        if numbers:
            self._listener.revoked(numbers)
        for p in numbers:
            self._starts.pop(p, None)
        consumer.unassign()

    def _failure(self, error: KafkaError) -> BrokerError:
        return refusal(error, self._settings, operation="read", topic=self.topic, group=self._group) or BrokerError(
            f"polling {self.topic} failed: {describe(error)}"
        )
