"""A real single-node Apache Kafka broker (KRaft) from the official jars, for machines without Docker.

``fetch_jars`` asks Maven for ``org.apache.kafka:kafka_2.13`` plus a log4j binding (Kafka's POM has none)
and copies them into a cache folder once. ``LocalBroker`` formats a fresh data folder, starts
``kafka.Kafka`` on two free loopback ports, waits for the readiness line, and stops it with SIGTERM,
then SIGKILL. Used by the tests, the demo and ``lineage broker``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

from lineage.errors import BrokerUnavailableError, ConfigurationError

__all__ = ["KAFKA_VERSION", "LocalBroker", "fetch_jars"]

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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalBroker:
    """One KRaft broker+controller process on loopback, in its own fresh data folder."""

    def __init__(self, lib: Path, workdir: Path | None = None, *, heap_mb: int = 512) -> None:
        """Prepare (not start) a broker that runs the jars in ``lib``."""
        self.lib = lib
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="lineage-kafka-"))
        self.heap_mb = heap_mb
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """The ``host:port`` clients connect to."""
        return f"127.0.0.1:{self.port}"

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
        """Format storage, start the broker and wait until it accepts clients."""
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = self.workdir / "data"
        shutil.rmtree(data, ignore_errors=True)  # a stale cluster id in an old folder breaks start-up
        self.port, cport = _free_port(), _free_port()
        config = self.workdir / "server.properties"
        config.write_text(_SERVER.format(port=self.port, cport=cport, data=data), encoding="utf-8")
        (self.workdir / "log4j2.properties").write_text(_LOG4J2, encoding="utf-8")
        fmt = subprocess.run(
            [
                *self._java(),
                "kafka.tools.StorageTool",
                "format",
                "-g",
                f"--cluster-id={new_cluster_id()}",
                "-c",
                str(config),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if fmt.returncode != 0:
            raise BrokerUnavailableError(
                self.bootstrap_servers, 0, f"storage format failed: {fmt.stderr.strip()[-2000:]}"
            )
        self.log_path.unlink(missing_ok=True)
        self._launch(timeout_s)
        return self

    def _launch(self, timeout_s: float) -> None:
        # A restart appends to the log; readiness is read from what this run wrote.
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*self._java(), "kafka.Kafka", str(self.workdir / "server.properties")],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # our Ctrl-C handling stops it; the terminal's does not race us
            )
        self._wait_ready(timeout_s, offset)

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
        self._launch(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float, offset: int = 0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise BrokerUnavailableError(
                    self.bootstrap_servers,
                    timeout_s,
                    f"the broker exited with {self.process.returncode}:\n{self._log_tail()}",
                )
            if _READY_LINE.encode() in self.log_path.read_bytes()[offset:]:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    pass
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


def stop_saved(path: Path, grace_s: float = 15.0) -> str | None:
    """Stop the broker recorded in ``path``; return its bootstrap servers, or None if none was running."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pid = int(state["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    path.unlink(missing_ok=True)
    return str(state["bootstrap_servers"])
