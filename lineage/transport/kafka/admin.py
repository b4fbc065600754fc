"""Topic administration."""

from __future__ import annotations

from collections.abc import Sequence

import kafka
import kafka.errors
from kafka.admin import NewTopic

from lineage.errors import BrokerError, BrokerUnavailableError
from lineage.settings import Settings
from lineage.transport.kafka.connection import client_options, wait_for_broker

__all__ = ["create_topics"]


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
            **client_options(settings),
            request_timeout_ms=int(settings.connect_timeout_s * 1000),
        )
    except kafka.errors.KafkaError as exc:
        raise BrokerUnavailableError(settings.bootstrap_servers, settings.connect_timeout_s, str(exc)) from exc
