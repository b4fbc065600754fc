"""Topic administration."""

from __future__ import annotations

from collections.abc import Sequence

import kafka
import kafka.errors
from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ConfigResource,
    ConfigResourceType,
    NewTopic,
    ResourcePattern,
    ResourceType,
)

from lineage.errors import BrokerError, BrokerUnavailableError
from lineage.settings import Settings
from lineage.transport.kafka.connection import client_options, refusal, wait_for_broker

__all__ = ["create_topics", "grant", "topic_exists", "topic_max_message_bytes", "topic_retention_ms"]

_KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588  # the broker's message.max.bytes default, if a topic does not say
_KAFKA_DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000  # the broker's log.retention.hours default (168)


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
        raise refusal(exc, settings, operation="create", topic=", ".join(names)) or BrokerError(
            f"could not create topics {list(names)}: {exc}"
        ) from exc
    finally:
        admin.close()


def grant(
    settings: Settings,
    user: str,
    *,
    read: Sequence[str] = (),
    write: Sequence[str] = (),
    groups: Sequence[str] = (),
) -> None:
    """Allow SASL ``user`` to read and/or write these topics and join these consumer groups (nothing more).

    ``settings`` must be an administrator's (on the local broker: its admin listener). Reading and
    writing each include describing the topic, which clients need for its metadata.
    """
    wanted = [(ResourceType.TOPIC, t, op) for t in read for op in (ACLOperation.READ, ACLOperation.DESCRIBE)]
    wanted += [(ResourceType.TOPIC, t, op) for t in write for op in (ACLOperation.WRITE, ACLOperation.DESCRIBE)]
    wanted += [(ResourceType.GROUP, g, ACLOperation.READ) for g in groups]
    acls = [
        ACL(f"User:{user}", "*", op, ACLPermissionType.ALLOW, ResourcePattern(kind, name))
        for kind, name, op in wanted
    ]
    admin = _admin(settings)
    try:
        result = admin.create_acls(acls)
    except kafka.errors.KafkaError as exc:
        raise BrokerError(f"could not grant rights to user {user!r}: {exc}") from exc
    finally:
        admin.close()
    if result["failed"]:  # kafka-python lists the error classes of the refused ACLs
        raise BrokerError(f"could not grant rights to user {user!r}: {result['failed'][0].__name__}")


def topic_exists(settings: Settings, topic: str, *, operation: str = "describe") -> bool:
    """Whether the broker has ``topic`` (a mistyped name otherwise reads as an empty topic).

    A topic this principal may not see raises ``AuthorizationError`` naming ``operation``, the
    right the caller needs, rather than answering "no such topic".
    """
    admin = _admin(settings)
    try:
        return _listed(admin, settings, topic, operation)
    except kafka.errors.KafkaError as exc:
        raise refusal(exc, settings, operation="describe", topic=topic) or BrokerError(
            f"could not list the topics: {exc}"
        ) from exc
    finally:
        admin.close()


def topic_max_message_bytes(settings: Settings, topic: str, *, operation: str = "describe") -> int | None:
    """The largest record batch ``topic`` accepts (its ``max.message.bytes``), or None if it does not exist.

    Asked of the broker rather than assumed (1 MB by default, but set per topic or per broker).
    """
    exists, value = _topic_config(settings, topic, "max.message.bytes", operation)
    if not exists:
        return None
    return int(value) if value is not None else _KAFKA_DEFAULT_MAX_MESSAGE_BYTES


def topic_retention_ms(settings: Settings, topic: str) -> int | None:
    """How long ``topic`` keeps a message (its ``retention.ms``; -1: for ever), or None if it does not exist."""
    exists, value = _topic_config(settings, topic, "retention.ms", "describe")
    if not exists:
        return None
    return int(value) if value is not None else _KAFKA_DEFAULT_RETENTION_MS


def _topic_config(settings: Settings, topic: str, key: str, operation: str) -> tuple[bool, str | None]:
    """Whether ``topic`` exists, and one value of its configuration (None: the broker gave none).

    kafka-python's ``describe_configs`` answers a missing topic with an empty config, not an error,
    so existence is checked on the topic list first; a topic hidden by the ACLs raises
    ``AuthorizationError`` naming ``operation``.
    """
    admin = _admin(settings)
    try:
        if not _listed(admin, settings, topic, operation):
            return False, None
        found = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {key: None})], config_filter="all"
        )
        value = found.get("topic", {}).get(topic, {}).get(key, {}).get("value")
        return True, None if value is None else str(value)
    except (kafka.errors.KafkaError, ValueError) as exc:
        raise BrokerError(f"could not read the configuration of topic {topic}: {exc}") from exc
    finally:
        admin.close()


def _listed(admin: kafka.KafkaAdminClient, settings: Settings, topic: str, operation: str) -> bool:
    """Whether ``topic`` is in the topic list; one missing from it only because the ACLs hide it raises.

    The list leaves out the topics this principal may not describe. Asked by name, the broker says
    "not authorised" for those (it then does not say whether they exist) and "unknown" for the
    topics that really are missing.
    """
    if topic in set(admin.list_topics()):
        return True
    [described] = admin.describe_topics([topic])
    if described.get("error_code") == kafka.errors.TopicAuthorizationFailedError.errno:
        raise refusal(kafka.errors.TopicAuthorizationFailedError(), settings, operation=operation, topic=topic) or (
            BrokerError(f"not authorised to {operation} topic {topic}")
        )
    return False


def _admin(settings: Settings) -> kafka.KafkaAdminClient:
    wait_for_broker(settings)
    try:
        return kafka.KafkaAdminClient(
            **client_options(settings),
            request_timeout_ms=int(settings.connect_timeout_s * 1000),
        )
    except kafka.errors.KafkaError as exc:
        raise refusal(exc, settings) or BrokerUnavailableError(
            settings.bootstrap_servers, settings.connect_timeout_s, str(exc)
        ) from exc
