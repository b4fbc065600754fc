"""Shared fixtures: a real Kafka broker for the session, a fresh topic per test, sample events."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lineage import Party, PersonalDataEvent, Settings
from lineage.contract.records import build_event
from lineage.transport.kafka import create_topics

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
PROCESSOR_HK = Party(name="crash-sdk", role="processor", region="HK")


def sample_events() -> list[PersonalDataEvent]:
    """One valid event of every type and scope, with most optional fields set."""
    common = {"system": "checkout", "system_region": "CN", "occurred_at": T0}
    return [
        build_event(
            "COLLECTED",
            subject_id="user-1",
            linked_subject_ids=["device-9"],
            subject_jurisdiction="CN",
            age_band="ADULT",
            categories=["user.contact.phone_number"],
            purpose="essential.service",
            legal_basis="CONTRACT",
            source="direct",
            retention_days=365,
            encrypted=True,
            **common,
        ),
        build_event(
            "SHARED",
            subject_id="user-1",
            categories=["user.device.device_id"],
            purpose="essential.service",
            recipient=PROCESSOR_HK,
            mechanism="gba.standard_contract",
            **common,
        ),
        build_event(
            "TRANSFERRED",
            subject_id=None,
            bulk_as_of=T0,
            categories=["user.contact.email", "user.name"],
            purpose="essential.service",
            recipient=Party(name="sg-warehouse", role="affiliate", region="SG"),
            transfer_kind="CROSS_BORDER",
            mechanism="pipl.standard_contract",
            **common,
        ),
        build_event(
            "TRANSFERRED",
            subject_id="user-2",
            categories=["user.contact.email"],
            purpose="essential.service",
            recipient=Party(name="acquirer-co", role="controller", region="CN"),
            transfer_kind="CONTROLLER_CHANGE",
            **common,
        ),
        build_event(
            "ERASED",
            subject_id="user-1",
            categories=["user.contact.phone_number"],
            erasure_outcome="HOLD",
            hold_reason="tax records kept 10 years",
            **common,
        ),
        build_event(
            "ERASED",
            subject_id="user-3",
            categories=["user.contact.phone_number"],
            erasure_outcome="ANONYMISED",
            **common,
        ),
        build_event(
            "CONSENT",
            subject_id="child-1",
            age_band="CHILD_UNDER_14",
            categories=["user.childrens"],
            purpose="essential.service",
            consent_status="GRANTED",
            consent_kind="GUARDIAN",
            consent_ref="form-1",
            **common,
        ),
    ]


def _docker_answers() -> bool:
    """Whether a Docker engine answers GET /_ping (the docker CLI alone proves nothing).

    Asked over a socket of our own: docker-py leaks its socket when the engine is absent.
    """
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: str | tuple[str, int] = host.removeprefix("unix://")
        elif host.startswith("tcp://"):
            name, _, port = host.removeprefix("tcp://").rpartition(":")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            address = (name, int(port))
        else:
            return False
        with sock:
            sock.settimeout(3)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b" 200 " in sock.recv(1024)
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real broker: LINEAGE_TEST_BOOTSTRAP_SERVERS, else testcontainers if Docker answers, else the jars.

    Never skips: if no broker can be had the integration tests fail with the reason.
    """
    explicit = os.environ.get("LINEAGE_TEST_BOOTSTRAP_SERVERS")
    if explicit:
        yield explicit
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer  # type: ignore[import-untyped]

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    from lineage.transport.local_broker import LocalBroker, fetch_jars

    cache = Path(os.environ.get("LINEAGE_CACHE_DIR", Path(__file__).parent.parent / ".cache"))
    try:
        broker = LocalBroker(fetch_jars(cache)).start()
    except Exception as exc:  # fail loudly, never skip
        pytest.fail(f"no Kafka broker could be started for the integration tests: {exc}", pytrace=False)
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> Settings:
    """Settings pointing at the session broker with a fresh topic pair, created with 3 partitions."""
    name = f"test.{uuid.uuid4().hex[:12]}"
    settings = Settings(
        bootstrap_servers=kafka_bootstrap,
        topic=name,
        dead_letter_topic=name + ".dlq",
        client_id="lineage-tests",
        connect_timeout_s=20,
    )
    create_topics(settings, [settings.topic, settings.dead_letter_topic], partitions=3)
    return settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the broker as ``integration``, so ``-m 'not integration'`` runs unit tests alone."""
    for item in items:
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
