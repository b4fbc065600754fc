"""Reading a topic from the beginning: ``lineage tail`` and the tests."""

from __future__ import annotations

from collections.abc import Iterator

import kafka
import kafka.errors

from lineage.errors import BrokerError, BrokerUnavailableError
from lineage.settings import Settings
from lineage.transport.kafka.connection import client_options, refusal, wait_for_broker
from lineage.transport.kafka.consumer import RawMessage

__all__ = ["read_messages"]


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
            **client_options(settings),
            group_id=group_id,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=int(idle_timeout_s * 1000),
        )
    except (kafka.errors.KafkaTimeoutError, kafka.errors.KafkaConnectionError) as exc:
        raise BrokerUnavailableError(settings.bootstrap_servers, settings.connect_timeout_s, str(exc)) from exc
    try:
        for n, m in enumerate(consumer, start=1):
            yield m
            if max_messages is not None and n >= max_messages:
                return
    except kafka.errors.KafkaError as exc:
        raise refusal(exc, settings, operation="read", topic=topic, group=group_id) or BrokerError(
            f"reading {topic} failed: {exc}"
        ) from exc
    finally:
        consumer.close()
