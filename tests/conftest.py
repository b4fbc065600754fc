"""Pytest fixtures: real Kafka, PostgreSQL and S3 servers for the session, a topic per test, the Hypothesis profile."""

from __future__ import annotations

import dataclasses
import gc
import os
import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from lineage import Settings
from lineage.devtools.ports import PORT_RANGE_ENV
from lineage.transport.kafka import create_topics
from tests.fixtures import HYPOTHESIS_PROFILE, KAFKA_CLIENTS
from tests.services import Postgres, SeaweedS3

# Profiles chosen by LINEAGE_HYPOTHESIS_PROFILE: "dev" (default) is quick; "ci" is thorough and
# prints a blob to reproduce any failure. No deadline: the reference tests build a store per
# example, and a busy CI machine must not turn slowness into failures.
hypothesis_settings.register_profile("dev", max_examples=20, deadline=None)
hypothesis_settings.register_profile(
    "ci", max_examples=100, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile(HYPOTHESIS_PROFILE)

# Each test worker's servers listen on ports of its own, below the kernel's ephemeral range
# (lineage.devtools.ports): a port chosen from that range could be taken by another worker's choice
# or by any outgoing connection before a server binds it, or while a server restarts on it.
# SeaweedFS pairs each port with port + 10000, so the workers share 12000-21999 and the pairs land
# in 22000-31999, where no worker chooses.
PORTS_LOW, PORTS_SPAN, PAIR_OFFSET = 12000, 10000, 10000


def _worker_port_range() -> str | None:
    """The ``LINEAGE_PORT_RANGE`` of this test worker; None (the kernel picks) when it cannot have one of its own."""
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if ephemeral_low < PORTS_LOW + PORTS_SPAN + PAIR_OFFSET:
        return None
    workers, name = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"), os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = name.removeprefix("gw")
    if not (workers.isdigit() and index.isdigit() and int(index) < int(workers)):
        return None  # a worker xdist restarted (gw2 of 2) or named otherwise: its range might be a live one's
    size = PORTS_SPAN // int(workers)
    low = PORTS_LOW + int(index) * size
    return f"{low}-{low + size - 1}"


if (_ports := _worker_port_range()) is not None:
    os.environ[PORT_RANGE_ENV] = _ports  # the servers this worker starts inherit it
else:
    os.environ.pop(PORT_RANGE_ENV, None)


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
    from lineage.devtools.local_broker import LocalBroker, fetch_jars

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


@pytest.fixture(params=KAFKA_CLIENTS)
def client_settings(kafka_settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """``kafka_settings`` on each Kafka client in turn (``settings.kafka_client``): the test runs once per client."""
    return dataclasses.replace(kafka_settings, kafka_client=request.param)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL server on 127.0.0.1 (the Iceberg SQL catalog); fails, never skips, if it cannot start."""
    server: Postgres | None = None
    try:
        server = Postgres()
        server.start()
    except Exception as exc:  # fail loudly, never skip
        if server is not None:
            server.close()  # no half-started server or folder left behind
        pytest.fail(f"no PostgreSQL server could be started for the tests: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def s3() -> Iterator[SeaweedS3]:
    """A real S3 server (SeaweedFS) on 127.0.0.1 with a bucket ``lake``; fails, never skips, if it cannot start."""
    server: SeaweedS3 | None = None
    try:
        server = SeaweedS3()
        server.start()
    except Exception as exc:  # fail loudly, never skip
        if server is not None:
            server.close()  # no half-started server or folder left behind
        pytest.fail(f"no S3 server (SeaweedFS) could be started for the tests: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(autouse=True)
def _stop_signals_heard() -> None:
    """Each test starts with SIGTERM and SIGINT unblocked in the runner, as a shell leaves them.

    Importing ``consumers.ingest`` holds them (its first line does, for its own process), and every
    child started after would inherit them held: a test's servers then never heard SIGTERM.
    """
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})


@pytest.fixture(autouse=True)
def _heap_unfrozen() -> Iterator[None]:
    """A test that runs the holdings maintainer's loop in the runner freezes its heap: thawed after it."""
    yield
    gc.unfreeze()


_SERVERS = {"kafka_bootstrap", "postgres", "s3"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a real server as ``integration``, so ``-m 'not integration'`` runs unit tests alone."""
    for item in items:
        if _SERVERS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
