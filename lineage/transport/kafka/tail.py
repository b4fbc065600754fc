"""Reading a topic from the beginning: ``lineage tail`` and the tests."""

from __future__ import annotations

import time
from collections.abc import Iterator

import kafka
import kafka.errors

from lineage.errors import BrokerError, BrokerUnavailableError
from lineage.settings import Settings
from lineage.transport.kafka.connection import client_options, refusal, wait_for_broker
from lineage.transport.kafka.consumer import RawMessage

__all__ = ["read_messages"]

_POLL_MS = 200


def read_messages(
    settings: Settings,
    topic: str,
    *,
    group_id: str | None = None,
    idle_timeout_s: float = 5.0,
    max_messages: int | None = None,
) -> Iterator[RawMessage]:
    """Read ``topic`` from the beginning until nothing new arrives for ``idle_timeout_s``.

    The idle clock starts once the reader has its partitions and knows where each begins: joining a
    group, fetching metadata and finding the first offsets can take seconds on a loaded machine, and
    counting them as idleness ended a read before its first message (a test then saw "nothing"). A
    topic that has no partitions yet is read as empty once ``idle_timeout_s`` passes; a group that
    assigns nothing within ``settings.connect_timeout_s`` more is ``BrokerUnavailableError``.
    """
    wait_for_broker(settings)
    try:
        consumer = kafka.KafkaConsumer(
            **client_options(settings), group_id=group_id, auto_offset_reset="earliest", enable_auto_commit=False
        )
    except (kafka.errors.KafkaTimeoutError, kafka.errors.KafkaConnectionError) as exc:
        raise BrokerUnavailableError(settings.bootstrap_servers, settings.connect_timeout_s, str(exc)) from exc
    try:
        last: float | None = None  # when a message last came: None while a group is not yet assigned
        if group_id is not None:
            consumer.subscribe([topic])
        elif _assign_all(consumer, topic, idle_timeout_s):
            last = time.monotonic()
        else:
            return  # no partitions: nothing to read
        joined_by = time.monotonic() + settings.connect_timeout_s + idle_timeout_s
        n = 0
        while True:
            batch = consumer.poll(timeout_ms=_POLL_MS)
            now = time.monotonic()
            if last is None:
                if consumer.assignment():
                    last = now
                elif now >= joined_by:
                    raise BrokerUnavailableError(
                        settings.bootstrap_servers,
                        settings.connect_timeout_s,
                        f"group {group_id} assigned no partition",
                    )
            for messages in batch.values():
                for m in messages:
                    yield m
                    n += 1
                    if max_messages is not None and n >= max_messages:
                        return
            if batch:
                last = time.monotonic()
            elif last is not None and now - last >= idle_timeout_s:
                return
    except kafka.errors.KafkaError as exc:
        raise refusal(exc, settings, operation="read", topic=topic, group=group_id) or BrokerError(
            f"reading {topic} failed: {exc}"
        ) from exc
    finally:
        consumer.close()


def _assign_all(consumer: kafka.KafkaConsumer, topic: str, wait_s: float) -> bool:
    """Take every partition of the topic and find its first offset; False if it has none within ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while not (partitions := consumer.partitions_for_topic(topic)):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    assigned = [kafka.TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(assigned)
    for tp in assigned:
        consumer.position(tp)  # finds "earliest" now, before the idle clock starts
    return True
