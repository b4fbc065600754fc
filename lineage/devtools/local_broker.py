"""A real single-node Apache Kafka broker (KRaft) from the official jars, for machines without Docker.

``fetch_jars`` asks Maven for ``org.apache.kafka:kafka_2.13`` plus a log4j binding (Kafka's POM has none)
and copies them into a cache folder once. ``LocalBroker`` formats its data folder (once: a restart
reuses it, topics and all), starts ``kafka.Kafka`` on loopback ports that it keeps for that folder,
waits for the readiness line, and stops it with SIGTERM, then SIGKILL. Used by the tests, the demo
and ``lineage broker``.

With a ``BrokerSecurity`` the client listener is SASL_SSL (SCRAM-SHA-512/256 and PLAIN users, a
PEM keystore) behind ACLs (``StandardAuthorizer``, nothing allowed without an ACL); a second,
plaintext loopback listener is the admin's, whose anonymous principal is the super user that
creates topics and ACLs.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from lineage.devtools.ports import free_port, port_is_free
from lineage.errors import BrokerUnavailableError, ConfigurationError
from lineage.transport.probe import kafka_answers

__all__ = ["KAFKA_VERSION", "BrokerSecurity", "LocalBroker", "fetch_jars", "running_saved", "stop_saved"]

KAFKA_VERSION = "4.3.1"  # newest 4.x that kafka-python 3.0 is tested against
LOG4J_VERSION = "2.25.1"
_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"
_READY_LINE = "Kafka Server started"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>lineage.local</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = INFO
"""

_SERVER = """process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data}
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
"""

# The secure variant's listeners: clients on SASL_SSL; the admin (and the broker itself) on a
# loopback plaintext listener whose ANONYMOUS principal is the super user.
_SECURE_LISTENERS = """listeners=SASL_SSL://127.0.0.1:{port},ADMIN://127.0.0.1:{aport},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=SASL_SSL://127.0.0.1:{port},ADMIN://127.0.0.1:{aport}
inter.broker.listener.name=ADMIN
listener.security.protocol.map=CONTROLLER:PLAINTEXT,ADMIN:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required {plain};
ssl.keystore.type=PEM
ssl.keystore.location={keystore}
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:ANONYMOUS
"""


@dataclass(frozen=True)
class BrokerSecurity:
    """A SASL_SSL client listener: the broker's PEM keystore and its users (name -> password)."""

    keystore: Path
    """PEM file with the broker's PKCS#8 private key (unencrypted) followed by its certificate chain."""
    users: Mapping[str, str] = field(repr=False, default_factory=dict)
    """SASL users, created for SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN alike."""


def fetch_jars(cache_dir: Path, *, version: str = KAFKA_VERSION) -> Path:
    """Return the folder of broker jars, asking Maven for them the first time."""
    lib = cache_dir / f"kafka-{version}" / "lib"
    marker = lib / ".complete"
    if marker.exists():
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ConfigurationError(
            "mvn", "Apache Maven is needed to fetch the Kafka jars; install it (apt-get install maven)"
        )
    lib.mkdir(parents=True, exist_ok=True)
    pom = lib.parent / "pom.xml"
    pom.write_text(_POM.format(kafka=version, log4j=LOG4J_VERSION), encoding="utf-8")
    proc = subprocess.run(
        [mvn, "-q", "-B", "-f", str(pom), _DEPENDENCY_PLUGIN, "-DincludeScope=runtime", f"-DoutputDirectory={lib}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not any(lib.glob(f"kafka_2.13-{version}.jar")):
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise ConfigurationError(
            "mvn", f"fetching Kafka {version} jars failed (exit {proc.returncode}):\n" + "\n".join(tail)
        )
    marker.touch()
    return lib


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID in 22 url-safe base64 characters, never starting with '-'.

    Kafka's own ``Uuid.randomUuid`` redraws ids that start with '-' (the storage tool's argument
    parser would read one as an option); so do we. About one draw in 64 would.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


_LISTENER_KEYS = (
    "listeners=",
    "advertised.listeners=",
    "inter.broker.listener.name=",
    "listener.security.protocol.map=",
)


class LocalBroker:
    """One KRaft broker+controller process on loopback, with its data and ports kept in ``workdir``.

    ``LocalBroker(lib, workdir).start()`` on a folder a broker ran in before (stopped, or killed)
    comes back on the same port with the same topics; ``reset()`` wipes the folder's data.
    """

    def __init__(
        self,
        lib: Path,
        workdir: Path | None = None,
        *,
        heap_mb: int = 512,
        port: int | None = None,
        security: BrokerSecurity | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> None:
        """Prepare (not start) a broker that runs the jars in ``lib``.

        ``port`` pins the client port; by default it is the one this ``workdir`` used last, or a
        free one. ``properties`` are added to (or override) its ``server.properties``: broker
        settings that cannot be changed while it runs, such as ``log.retention.check.interval.ms``.
        """
        for key, value in (properties or {}).items():
            if not key or "=" in key or any(c in key + value for c in "\r\n"):
                raise ValueError(f"server property {key!r}: one line, key without '='")
        self.lib = lib
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="lineage-kafka-"))
        self.heap_mb = heap_mb
        self.security = security
        self.properties = dict(properties or {})
        self.port = port or 0
        self.admin_port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """The ``host:port`` clients connect to."""
        return f"127.0.0.1:{self.port}"

    @property
    def admin_bootstrap_servers(self) -> str:
        """The plaintext loopback listener of the super user (secure brokers only; else the client one)."""
        return f"127.0.0.1:{self.admin_port}" if self.security is not None else self.bootstrap_servers

    @property
    def data_dir(self) -> Path:
        """The broker's log folder: formatted once, kept across stops and restarts."""
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        """The broker's console log."""
        return self.workdir / "broker.log"

    def _java(self) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise ConfigurationError("java", "a Java 17+ runtime is needed to run the Kafka broker")
        return [
            java,
            f"-Xms{min(256, self.heap_mb)}m",
            f"-Xmx{self.heap_mb}m",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.workdir / 'logs'}",
            "-cp",
            str(self.lib / "*"),
        ]

    def start(self, timeout_s: float = 90.0) -> LocalBroker:
        """Start the broker (formatting its storage the first time) and wait until it accepts clients."""
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        ports = self._ports()
        self.port, self.admin_port = ports["port"], ports["admin_port"]
        config = self.workdir / "server.properties"
        config.write_text(self._server_properties(ports), encoding="utf-8")
        config.chmod(0o600)  # holds the PLAIN users' passwords
        (self.workdir / "log4j2.properties").write_text(_LOG4J2, encoding="utf-8")
        if not (self.data_dir / "meta.properties").exists():
            self._format(config)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*self._java(), "kafka.Kafka", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # our Ctrl-C handling stops it; the terminal's does not race us
            )
        self._wait_ready(timeout_s)
        return self

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would: no clean shutdown (the outage tests use it)."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def restart(self, timeout_s: float = 90.0) -> LocalBroker:
        """Start the stopped or killed broker again on the same port and data folder: topics survive."""
        if self.process is not None and self.process.poll() is None:
            return self
        return self.start(timeout_s)

    def reset(self) -> None:
        """Stop the broker and wipe its data and ports: the next ``start`` is a fresh cluster."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        (self.workdir / "ports.json").unlink(missing_ok=True)

    def _ports(self) -> dict[str, int]:
        """Ports for this folder: as last used (the data's controller is registered on them), else free ones.

        An explicit ``port`` wins; a port another process holds fails here with a clear reason
        rather than as a JVM bind error in the log.
        """
        path = self.workdir / "ports.json"
        try:
            saved = {k: int(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
        except (OSError, ValueError, AttributeError):
            saved = {}
        ports: dict[str, int] = {}
        for name, given in (("port", self.port), ("admin_port", None), ("controller_port", None)):
            ports[name] = given or saved.get(name) or free_port(avoid=ports.values())
        for name, number in ports.items():
            if not port_is_free(number):
                raise BrokerUnavailableError(
                    f"127.0.0.1:{ports['port']}", 0, f"{name} {number} is in use by another process"
                )
        path.write_text(json.dumps(ports), encoding="utf-8")
        return ports

    def _server_properties(self, ports: dict[str, int]) -> str:
        text = _SERVER.format(port=ports["port"], cport=ports["controller_port"], data=self.data_dir)
        if self.properties:
            kept = [line for line in text.splitlines() if line.partition("=")[0] not in self.properties]
            text = "\n".join([*kept, *(f"{k}={v}" for k, v in self.properties.items())]) + "\n"
        if self.security is None:
            return text
        plain = " ".join(f'user_{name}="{password}"' for name, password in self.security.users.items())
        secure = _SECURE_LISTENERS.format(
            port=ports["port"],
            aport=ports["admin_port"],
            cport=ports["controller_port"],
            plain=plain,
            keystore=self.security.keystore,
        )
        kept = [line for line in text.splitlines() if not line.startswith(_LISTENER_KEYS)]
        return "\n".join([*kept, secure])

    def _format(self, config: Path) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)  # a half-formatted folder would refuse to start
        scram = []
        for name, password in (self.security.users.items() if self.security else ()):
            for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
                scram += ["--add-scram", f"{mechanism}=[name={name},password={password}]"]
        fmt = subprocess.run(
            [
                *self._java(),
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={new_cluster_id()}",
                "-c",
                str(config),
                *scram,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if fmt.returncode != 0:
            raise BrokerUnavailableError(
                self.bootstrap_servers, 0, f"storage format failed: {fmt.stderr.strip()[-2000:]}"
            )

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise BrokerUnavailableError(
                    self.bootstrap_servers,
                    timeout_s,
                    f"the broker exited with {self.process.returncode}:\n{self._log_tail()}",
                )
            if _READY_LINE in self.log_path.read_text(encoding="utf-8", errors="replace") and kafka_answers(
                "127.0.0.1", self.admin_port if self.security is not None else self.port
            ):  # the plaintext listener: the client one may want TLS
                return
            time.sleep(0.2)
        self.stop()
        raise BrokerUnavailableError(
            self.bootstrap_servers, timeout_s, f"the broker did not become ready:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no broker log)"

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> LocalBroker:
        """Start on entry."""
        return self.start() if self.process is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop on exit."""
        self.stop()

    # -- a broker that outlives the command that started it (``lineage broker start``) -----------

    def save_state(self, path: Path) -> None:
        """Write pid, port and folder so ``stop_saved`` can find the broker later."""
        assert self.process is not None
        state = {"pid": self.process.pid, "bootstrap_servers": self.bootstrap_servers, "workdir": str(self.workdir)}
        path.write_text(json.dumps(state), encoding="utf-8")


def _read_state(path: Path) -> dict[str, str] | None:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        return {"pid": str(int(state["pid"])), "bootstrap_servers": str(state["bootstrap_servers"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _is_broker_process(pid: int) -> bool:
    """Whether ``pid`` is alive and is a Kafka broker JVM (not another process that reused the number)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: not a broker we started
    try:
        return b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc to ask: trust the pid


def running_saved(path: Path) -> str | None:
    """The bootstrap servers of the broker recorded in ``path`` if it is really up, else None.

    Up means its JVM is alive *and* answers a Kafka request: a saved file outlives a killed JVM, and
    a hung or frozen (SIGSTOP) JVM holds the data folder's lock without serving anyone, while the
    kernel still completes TCP connects to its port.
    """
    state = _read_state(path)
    if state is None or not _is_broker_process(int(state["pid"])):
        return None
    host, _, port = state["bootstrap_servers"].rpartition(":")
    try:
        # generous: a live broker on a loaded machine may take seconds to answer; a frozen one never does
        answers = kafka_answers(host, int(port), timeout_s=5.0)
    except ValueError:
        return None
    return state["bootstrap_servers"] if answers else None


def stop_saved(path: Path, grace_s: float = 15.0) -> str | None:
    """Stop the broker recorded in ``path`` and forget it; return its bootstrap servers, or None if none was running.

    Its data folder is kept: the next start comes back with the same topics on the same port.
    """
    state = _read_state(path)
    if state is None:
        path.unlink(missing_ok=True)
        return None
    pid = int(state["pid"])
    running = _is_broker_process(pid)
    if running:
        try:
            os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGCONT)  # a frozen (SIGSTOP) JVM handles the SIGTERM only once continued
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline and _is_broker_process(pid):
                time.sleep(0.2)
            if _is_broker_process(pid):
                os.kill(pid, signal.SIGKILL)
                while _is_broker_process(pid):  # the data folder's lock goes with the process
                    time.sleep(0.1)
        except ProcessLookupError:
            pass
    path.unlink(missing_ok=True)
    return state["bootstrap_servers"] if running else None
