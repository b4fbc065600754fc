"""TLS + SASL against a real broker with ACLs: who may write, who may read, and clear refusals.

A second broker (small heap) listens SASL_SSL with certificates made here by the openssl CLI;
its ACLs let `emitter` write the events topic only, and `ingest` read it and write the dead-letter
topic; `nobody` has no rights at all.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lineage import Codec, Emitter, Settings
from lineage.contract.taxonomy import default_taxonomy
from lineage.devtools.local_broker import BrokerSecurity, LocalBroker, fetch_jars
from lineage.errors import AuthenticationError, AuthorizationError
from lineage.ingest.consumer import IngestConsumer
from lineage.store import Store
from lineage.transport.clients import dead_letter_sink, event_sink
from lineage.transport.kafka import create_topics, grant, read_messages
from tests.fixtures import KAFKA_CLIENTS, one_line_failure, run_cli, sample_events

pytestmark = pytest.mark.integration

USERS = {"emitter": "emitter-pw-1", "ingest": "ingest-pw-2", "nobody": "nobody-pw-3"}


@dataclasses.dataclass(frozen=True)
class Secure:
    """The secure broker and the two CAs: the one that signed it, and a stranger."""

    broker: LocalBroker
    ca: Path
    other_ca: Path


def _openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, a broker keystore (PKCS#8 key + certificate for 127.0.0.1) signed by it, and an unrelated CA."""
    for ca in ("ca", "other-ca"):
        _openssl(
            folder,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{ca}.key",
            "-out",
            f"{ca}.pem",
            "-days",
            "2",
            "-subj",
            f"/CN=lineage {ca}",
        )
    _openssl(
        folder,
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "broker.key",
        "-out",
        "broker.csr",
        "-subj",
        "/CN=localhost",
    )
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n", encoding="utf-8")
    _openssl(
        folder,
        "x509",
        "-req",
        "-in",
        "broker.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "broker.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    )
    keystore = folder / "keystore.pem"
    keystore.write_bytes((folder / "broker.key").read_bytes() + (folder / "broker.pem").read_bytes())
    keystore.chmod(0o600)
    return folder / "ca.pem", keystore, folder / "other-ca.pem"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    """A SASL_SSL broker with ACLs for this module, stopped at its end."""
    folder = tmp_path_factory.mktemp("secure-kafka")
    folder.chmod(0o700)
    ca, keystore, other_ca = _certificates(folder)
    cache = Path(os.environ.get("LINEAGE_CACHE_DIR", Path(__file__).parents[2] / ".cache"))
    broker = LocalBroker(
        fetch_jars(cache), folder / "broker", heap_mb=256, security=BrokerSecurity(keystore, USERS)
    ).start()
    try:
        yield Secure(broker, ca, other_ca)
    finally:
        broker.stop()


@pytest.fixture(params=KAFKA_CLIENTS)
def client(request: pytest.FixtureRequest) -> str:
    """Each Kafka client in turn: the producing tests run once per client."""
    return str(request.param)


@pytest.fixture
def admin(secure: Secure) -> Settings:
    """Administrator settings (the broker's plaintext loopback listener) with a fresh topic pair and the ACLs."""
    name = f"sec.{uuid.uuid4().hex[:10]}"
    settings = Settings(
        bootstrap_servers=secure.broker.admin_bootstrap_servers,
        topic=name,
        dead_letter_topic=name + ".dlq",
        client_id="lineage-tests",
        connect_timeout_s=20,
    )
    create_topics(settings, [settings.topic, settings.dead_letter_topic], partitions=1)
    grant(settings, "emitter", write=[settings.topic])
    grant(settings, "ingest", read=[settings.topic], write=[settings.dead_letter_topic], groups=[name + ".group"])
    return settings


def _as(secure: Secure, admin: Settings, user: str, client: str = "kafka-python", **changes: object) -> Settings:
    """The admin's topics, reached as ``user`` over SASL_SSL with ``client``."""
    values: dict[str, object] = {
        "bootstrap_servers": secure.broker.bootstrap_servers,
        "security_protocol": "SASL_SSL",
        "sasl_username": user,
        "sasl_password": USERS.get(user, "no-such-password"),
        "ssl_cafile": secure.ca,
        "connect_timeout_s": 10,
        "kafka_client": client,
        **changes,
    }
    return dataclasses.replace(admin, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_the_emitting_principal_emits_over_sasl_ssl(
    secure: Secure, admin: Settings, mechanism: str, client: str
) -> None:
    """The SDK, as `emitter` with each mechanism and client, delivers an event over TLS to the topic it may write."""
    settings = _as(secure, admin, "emitter", client, sasl_mechanism=mechanism)
    with Emitter(system="web", region="CN", settings=settings) as emit:
        delivery = emit.collected("user-1", ["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT")
        delivery.result(20)
    assert len(list(read_messages(admin, admin.topic, idle_timeout_s=3))) == 1


def test_the_consumer_principal_ingests_and_writes_dead_letters(
    secure: Secure, admin: Settings, tmp_path: Path, client: str
) -> None:
    """As `ingest`, the consumer stores the good events and sends the bad one to the dead-letter topic (each client)."""
    codec = Codec()
    events = sample_events()[:3]
    sink = event_sink(admin)
    for event in events:
        sink.send(admin.topic, b"k", codec.encode(event), event.event_id)
    sink.send(admin.topic, b"garbage", os.urandom(40), "garbage")
    sink.flush(20)
    sink.close(10)
    settings = _as(secure, admin, "ingest", client)
    group = admin.topic + ".group"
    consumer = IngestConsumer(settings, store_dir=tmp_path, group_id=group, taxonomy=default_taxonomy())
    stats = consumer.run(threading.Event(), idle_exit_s=3)
    assert sorted(Store(tmp_path).event_ids()) == sorted(e.event_id for e in events), stats
    assert [m.key for m in read_messages(admin, admin.dead_letter_topic, idle_timeout_s=3)] == [b"garbage"]


def test_the_emitting_principal_may_not_read(secure: Secure, admin: Settings) -> None:
    """`emitter` reading the events topic is refused in one line naming the topic and the operation."""
    with pytest.raises(AuthorizationError, match=f"not authorised to read topic {admin.topic}") as err:
        list(read_messages(_as(secure, admin, "emitter"), admin.topic, idle_timeout_s=3))
    assert "\n" not in str(err.value) and not err.value.retryable


def test_the_emitting_principal_may_not_ingest(secure: Secure, admin: Settings, tmp_path: Path, client: str) -> None:
    """`emitter` running the ingest consumer is refused in one line naming the group or topic (each client)."""
    settings = _as(secure, admin, "emitter", client)
    with pytest.raises(AuthorizationError, match="not authorised to") as err:
        group = admin.topic + ".g"
        consumer = IngestConsumer(settings, store_dir=tmp_path, group_id=group, taxonomy=default_taxonomy())
        consumer.run(threading.Event(), idle_exit_s=3)
    assert "\n" not in str(err.value) and admin.topic in str(err.value)


def test_a_principal_without_rights_may_not_write(secure: Secure, admin: Settings, client: str) -> None:
    """`nobody` emitting is refused in one line naming the topic and the operation, not retried forever."""
    settings = _as(secure, admin, "nobody", client)
    with pytest.raises(AuthorizationError, match=f"not authorised to write topic {admin.topic}") as err:  # noqa: PT012
        with Emitter(system="web", region="CN", settings=settings) as emit:
            emit.collected(
                "user-1", ["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT"
            ).result(20)
    assert "\n" not in str(err.value) and "user-1" not in str(err.value)


@pytest.mark.parametrize(("user", "password"), [("emitter", "wrong-password"), ("stranger", "stranger-pw")])
def test_bad_credentials_fail_with_one_clear_line(
    secure: Secure, admin: Settings, user: str, password: str, client: str
) -> None:
    """A wrong password or unknown user names the credential settings, never the password, and is terminal."""
    with pytest.raises(AuthenticationError) as err:
        event_sink(_as(secure, admin, user, client, sasl_password=password))
    message = str(err.value)
    assert message.startswith("sasl_username/sasl_password: ") and password not in message
    assert "\n" not in message and not err.value.retryable


def test_an_untrusted_certificate_fails_with_one_clear_line(secure: Secure, admin: Settings, client: str) -> None:
    """A broker certificate not signed by ssl_cafile's CA fails at once, naming ssl_cafile."""
    with pytest.raises(AuthenticationError, match=r"^ssl_cafile: the certificate of 127\.0\.0\.1:\d+ is not trusted"):
        event_sink(_as(secure, admin, "emitter", client, ssl_cafile=secure.other_ca))


def test_a_principal_without_rights_on_the_dead_letter_topic_is_told_not_authorised(
    secure: Secure, admin: Settings, client: str
) -> None:
    """`emitter` opening the dead-letter producer hears it may not write that topic, not that it is missing."""
    with pytest.raises(AuthorizationError, match=f"^not authorised to write topic {admin.dead_letter_topic} ") as err:
        dead_letter_sink(_as(secure, admin, "emitter", client))
    assert "does not exist" not in str(err.value) and "\n" not in str(err.value)


def _tail(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, protocol: str, server: str, secure: Secure
) -> tuple[int, str]:
    """Run `lineage tail` as `emitter` with ``protocol`` given in the environment, as an operator would."""
    # a connect bound far above what a handshake takes at load 10, so "at once" can be told from "waited out"
    env = {"LINEAGE_SECURITY_PROTOCOL": protocol, "LINEAGE_CONNECT_TIMEOUT_S": "90"}
    if protocol.startswith("SASL_"):
        env |= {"LINEAGE_SASL_USERNAME": "emitter", "LINEAGE_SASL_PASSWORD": USERS["emitter"]}
    if protocol.endswith("SSL"):
        env["LINEAGE_SSL_CAFILE"] = str(secure.ca)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, _, err = run_cli(capsys, "tail", "--bootstrap-servers", server, "--topic", "any", "--idle", "1")
    return code, err


@pytest.mark.parametrize(
    ("protocol", "listener", "heard"),
    [
        ("PLAINTEXT", "bootstrap_servers", "TLS"),
        ("SASL_PLAINTEXT", "bootstrap_servers", "TLS"),
        ("SSL", "admin_bootstrap_servers", "plaintext Kafka"),
        ("SASL_SSL", "admin_bootstrap_servers", "plaintext Kafka"),
    ],
)
def test_a_protocol_the_listener_does_not_speak_is_named_at_once(
    secure: Secure,
    protocol: str,
    listener: str,
    heard: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Plaintext at the SASL_SSL listener or TLS at the plaintext one: one line naming security_protocol, exit 2."""
    started = time.monotonic()
    code, err = _tail(capsys, monkeypatch, protocol, getattr(secure.broker, listener), secure)
    line = one_line_failure(code, err)
    assert line.startswith(f"lineage: security_protocol: is {protocol} but the listener at ")
    assert f"speaks {heard};" in line and USERS["emitter"] not in err
    assert time.monotonic() - started < 45  # the connect bound is 90 s: not waited out
