"""The Kafka adapter: producer, consumer and admin calls. The only module importing kafka-python.

Everything here speaks bytes and our own types; kafka-python's exceptions are translated into
``BrokerError`` subclasses at this boundary.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import kafka
import kafka.errors
from kafka import ConsumerRebalanceListener, OffsetAndMetadata, TopicPartition
from kafka.admin import NewTopic

from lineage.errors import BrokerError, BrokerUnavailableError, DeliveryError
from lineage.events import DeadLetter
from lineage.settings import Settings
from lineage.sink import Receipt

__all__ = [
    "DeadLetterProducer",
    "DeliveryReceipt",
    "KafkaBatchSource",
    "KafkaDelivery",
    "KafkaEventSink",
    "RawMessage",
    "create_topics",
    "read_messages",
    "wait_for_broker",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """Where the broker stored an event."""

    topic: str
    partition: int
    offset: int


class RawMessage(Receipt, Protocol):
    """A message as read from Kafka, before decoding: where it is (topic, partition, offset) and what.

    A protocol, not a class we build: kafka-python's records already have these attributes, and
    copying each into an object of ours cost ~3 us/event on the ingest path.
    """

    @property
    def key(self) -> bytes | None:
        """The message key (the subject, or the holder of a bulk event)."""
        ...

    @property
    def value(self) -> bytes | None:
        """The encoded event."""
        ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]:
        """The message headers."""
        ...


class KafkaDelivery:
    """A pending send; ``result()`` waits for the broker's acknowledgement."""

    __slots__ = ("event_id", "future", "topic")

    def __init__(self, future: Any, event_id: str, topic: str) -> None:
        """Wrap kafka-python's future."""
        self.future = future
        self.event_id = event_id
        self.topic = topic

    def result(self, timeout_s: float | None = None) -> DeliveryReceipt:
        """Wait for the acknowledgement; raise ``DeliveryError`` if the broker did not take it."""
        try:
            meta = self.future.get(timeout=timeout_s)
        except kafka.errors.KafkaTimeoutError as exc:
            if not self.future.is_done:
                raise DeliveryError(
                    self.event_id, self.topic, f"no acknowledgement within {timeout_s} s yet (it may still arrive)"
                ) from exc
            raise DeliveryError(self.event_id, self.topic, str(exc)) from exc
        except kafka.errors.KafkaError as exc:
            raise DeliveryError(self.event_id, self.topic, str(exc)) from exc
        return DeliveryReceipt(meta.topic, meta.partition, meta.offset)


class KafkaEventSink:
    """Sends encoded events to Kafka with acks from all in-sync replicas and idempotence."""

    def __init__(self, settings: Settings) -> None:
        """Connect, or raise ``BrokerUnavailableError`` within ``settings.connect_timeout_s``."""
        self._settings = settings
        self._pending: deque[KafkaDelivery] = deque()
        bound_ms = int(settings.connect_timeout_s * 1000)
        wait_for_broker(settings)
        try:
            self._producer = kafka.KafkaProducer(
                bootstrap_servers=settings.bootstrap_servers.split(","),
                client_id=settings.client_id,
                acks="all",
                enable_idempotence=True,
                linger_ms=settings.linger_ms,
                batch_size=256 * 1024,
                # kafka-python waits separately for bootstrap, for metadata and for buffer space:
                # bound each so a dead broker fails within the promised time, never hangs.
                bootstrap_timeout_ms=bound_ms,
                max_block_ms=bound_ms,
                request_timeout_ms=min(bound_ms, int(settings.delivery_timeout_s * 1000)),
                delivery_timeout_ms=int(settings.delivery_timeout_s * 1000),
            )
        except (kafka.errors.KafkaTimeoutError, kafka.errors.KafkaConnectionError) as exc:
            raise BrokerUnavailableError(settings.bootstrap_servers, settings.connect_timeout_s, str(exc)) from exc
        except kafka.errors.KafkaError as exc:
            raise BrokerError(f"could not start a producer for {settings.bootstrap_servers}: {exc}") from exc

    def send(self, topic: str, key: bytes, value: bytes, event_id: str) -> KafkaDelivery:
        """Queue one message; a failure shows in ``failures()`` once the broker has answered."""
        try:
            future = self._producer.send(topic, value=value, key=key)
        except kafka.errors.KafkaTimeoutError as exc:
            raise DeliveryError(
                event_id,
                topic,
                f"no metadata for the topic within {self._settings.connect_timeout_s:g} s "
                f"(does it exist? is the broker up?): {exc}",
            ) from exc
        except kafka.errors.KafkaError as exc:
            raise DeliveryError(event_id, topic, str(exc)) from exc
        delivery = KafkaDelivery(future, event_id, topic)
        self._pending.append(delivery)
        return delivery

    def failures(self) -> list[DeliveryError]:
        """Failed deliveries among those completed in send order (cheaper than a callback per message)."""
        pending = self._pending
        failed = []
        while pending and pending[0].future.is_done:
            done = pending.popleft()
            if done.future.failed():
                failed.append(DeliveryError(done.event_id, done.topic, str(done.future.exception)))
        return failed

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every queued message is acknowledged or failed."""
        try:
            self._producer.flush(timeout=timeout_s)
        except kafka.errors.KafkaTimeoutError as exc:
            raise BrokerError(f"messages still unacknowledged after {timeout_s} s: {exc}") from exc

    def close(self, timeout_s: float | None = None) -> None:
        """Flush and release the connection."""
        try:
            self._producer.close(timeout=timeout_s)
        except kafka.errors.KafkaError as exc:
            raise BrokerError(f"messages still unacknowledged when closing: {exc}") from exc


def wait_for_broker(settings: Settings) -> None:
    """Wait until some bootstrap server accepts a TCP connection, or raise ``BrokerUnavailableError``.

    Checked before kafka-python is involved: its bootstrap loop leaks a socket per failed attempt
    (3.0.12), and a refused port should fail with our message, not after its retries.
    """
    deadline = time.monotonic() + settings.connect_timeout_s
    last = "no bootstrap server given"
    backoff = 0.05
    while True:
        for server in settings.bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            remaining = deadline - time.monotonic()
            try:
                socket.create_connection(
                    (host.strip("[]") or "localhost", int(port)), timeout=max(remaining, 0.01)
                ).close()
                return
            except (OSError, ValueError) as exc:
                last = f"{server.strip()}: {exc}"
        if time.monotonic() + backoff >= deadline:
            raise BrokerUnavailableError(settings.bootstrap_servers, settings.connect_timeout_s, last)
        time.sleep(backoff)
        backoff = min(backoff * 2, 1.0)


def create_topics(settings: Settings, names: Sequence[str], partitions: int = 3) -> None:
    """Create topics that do not exist yet (replication factor 1 suits a local broker)."""
    admin = _admin(settings)
    try:
        existing = set(admin.list_topics())
        new = [NewTopic(n, partitions, 1) for n in names if n not in existing]
        if new:
            admin.create_topics(new)
    except kafka.errors.TopicAlreadyExistsError:
        pass
    except kafka.errors.KafkaError as exc:
        raise BrokerError(f"could not create topics {list(names)}: {exc}") from exc
    finally:
        admin.close()


def _admin(settings: Settings) -> kafka.KafkaAdminClient:
    wait_for_broker(settings)
    try:
        return kafka.KafkaAdminClient(
            bootstrap_servers=settings.bootstrap_servers.split(","),
            client_id=settings.client_id,
            request_timeout_ms=int(settings.connect_timeout_s * 1000),
            bootstrap_timeout_ms=int(settings.connect_timeout_s * 1000),
        )
    except kafka.errors.KafkaError as exc:
        raise BrokerUnavailableError(settings.bootstrap_servers, settings.connect_timeout_s, str(exc)) from exc


def read_messages(
    settings: Settings,
    topic: str,
    *,
    group_id: str | None = None,
    idle_timeout_s: float = 5.0,
    max_messages: int | None = None,
) -> Iterator[RawMessage]:
    """Read ``topic`` from the beginning until nothing new arrives for ``idle_timeout_s``."""
    wait_for_broker(settings)
    try:
        consumer = kafka.KafkaConsumer(
            topic,
            bootstrap_servers=settings.bootstrap_servers.split(","),
            client_id=settings.client_id,
            group_id=group_id,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=int(idle_timeout_s * 1000),
            bootstrap_timeout_ms=int(settings.connect_timeout_s * 1000),
        )
    except (kafka.errors.KafkaTimeoutError, kafka.errors.KafkaConnectionError) as exc:
        raise BrokerUnavailableError(settings.bootstrap_servers, settings.connect_timeout_s, str(exc)) from exc
    try:
        for n, m in enumerate(consumer, start=1):
            yield m
            if max_messages is not None and n >= max_messages:
                return
    except kafka.errors.KafkaError as exc:
        raise BrokerError(f"reading {topic} failed: {exc}") from exc
    finally:
        consumer.close()


class DeadLetterProducer:
    """Sends dead letters to the dead-letter topic: original key and bytes, reason in the headers."""

    def __init__(self, settings: Settings) -> None:
        """Connect, or raise ``BrokerUnavailableError`` within ``settings.connect_timeout_s``."""
        self._settings = settings
        wait_for_broker(settings)
        try:
            self._producer = kafka.KafkaProducer(
                bootstrap_servers=settings.bootstrap_servers.split(","),
                client_id=settings.client_id + "-dlq",
                acks="all",
                enable_idempotence=True,
                linger_ms=settings.linger_ms,
                bootstrap_timeout_ms=int(settings.connect_timeout_s * 1000),
                max_block_ms=int(settings.connect_timeout_s * 1000),
                delivery_timeout_ms=int(settings.delivery_timeout_s * 1000),
                request_timeout_ms=min(int(settings.connect_timeout_s * 1000), int(settings.delivery_timeout_s * 1000)),
            )
        except kafka.errors.KafkaError as exc:
            raise BrokerUnavailableError(settings.bootstrap_servers, settings.connect_timeout_s, str(exc)) from exc
        self._futures: list[Any] = []

    def send(self, letter: DeadLetter) -> None:
        """Queue one dead letter; ``flush`` makes it durable."""
        headers = [
            *letter.headers,
            ("lineage.reason", letter.reason.encode("utf-8")),
            ("lineage.source.topic", letter.source.encode("utf-8")),
            ("lineage.source.partition", str(letter.partition).encode()),
            ("lineage.source.offset", str(letter.offset).encode()),
        ]
        if letter.field is not None:
            headers.append(("lineage.field", letter.field.encode("utf-8")))
        try:
            future = self._producer.send(
                self._settings.dead_letter_topic, key=letter.key, value=letter.value, headers=headers
            )
        except kafka.errors.KafkaError as exc:
            raise BrokerError(f"could not queue a dead letter for {self._settings.dead_letter_topic}: {exc}") from exc
        self._futures.append(future)

    def flush(self) -> None:
        """Wait until every queued dead letter is acknowledged; raise ``BrokerError`` if one was not.

        A failed dead letter stays queued, so every later ``flush`` raises too: the consumer must
        not write the segment covering its offset, or the bad message would be lost for good.
        """
        try:
            self._producer.flush(timeout=self._settings.delivery_timeout_s)
        except kafka.errors.KafkaError as exc:
            raise BrokerError(
                f"dead letters unacknowledged after {self._settings.delivery_timeout_s} s: {exc}"
            ) from exc
        failed = [f for f in self._futures if f.failed()]
        if failed:
            topic = self._settings.dead_letter_topic
            raise BrokerError(f"{len(failed)} dead letter(s) were not delivered to {topic}: {failed[0].exception}")
        self._futures = []

    def close(self) -> None:
        """Flush and disconnect."""
        try:
            self._producer.close(timeout=self._settings.delivery_timeout_s)
        except kafka.errors.KafkaError as exc:
            raise BrokerError(f"closing the dead-letter producer: {exc}") from exc


class PartitionListener(Protocol):
    """Told when this consumer gains or loses partitions."""

    def assigned(self, partitions: list[int]) -> dict[int, int]:
        """Return the offset to start each newly assigned partition from (absent: the beginning)."""
        ...

    def revoked(self, partitions: list[int]) -> None:
        """Finish work on partitions about to go to another consumer."""
        ...


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
        try:
            self._consumer = kafka.KafkaConsumer(
                bootstrap_servers=settings.bootstrap_servers.split(","),
                client_id=settings.client_id,
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
                bootstrap_timeout_ms=int(settings.connect_timeout_s * 1000),
            )
        except kafka.errors.KafkaError as exc:
            raise BrokerUnavailableError(settings.bootstrap_servers, settings.connect_timeout_s, str(exc)) from exc
        self._consumer.subscribe([self.topic], listener=_Rebalance(self, listener))

    def poll(self, timeout_s: float) -> list[RawMessage]:
        """Up to ``max_poll_records`` messages, in offset order within each partition."""
        try:
            batches = self._consumer.poll(timeout_ms=int(timeout_s * 1000))
        except kafka.errors.KafkaError as exc:
            raise BrokerError(f"polling {self.topic} failed: {exc}") from exc
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
