"""Store fixtures: the Spark jars, and a PostgreSQL server for the SQL catalog (until tests/services.py has one)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.spark import spark_jars as fetch_spark_jars

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture(scope="session")
def spark_jars() -> list[Path]:
    """The Iceberg Spark runtime, AWS bundle and PostgreSQL driver jars; fails loudly if Maven cannot fetch them."""
    cache = Path(os.environ.get("LINEAGE_CACHE_DIR", Path(__file__).parents[2] / ".cache"))
    try:
        return fetch_spark_jars(cache)
    except Exception as exc:  # fail loudly, never skip
        pytest.fail(f"the Spark jars could not be fetched: {exc}", pytrace=False)


@dataclass(frozen=True)
class Postgres:
    """A running PostgreSQL server on 127.0.0.1 and one empty database on it."""

    port: int
    database: str
    user: str = "postgres"
    password: str = field(default="", repr=False)

    @property
    def sqlalchemy_url(self) -> str:
        """The URI for pyiceberg's SqlCatalog (in-process only: it holds the password)."""
        return f"postgresql+psycopg2://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    @property
    def jdbc_url(self) -> str:
        """Iceberg's JdbcCatalog URI (no credentials in it)."""
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{self.database}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(*args: str) -> None:
    """Run a PostgreSQL tool as the postgres user (initdb refuses root); its output becomes the failure."""
    proc = subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr)[-2000:]
        raise RuntimeError(f"{Path(args[0]).name} failed (exit {proc.returncode}): {output}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[tuple[int, str]]:
    """A PostgreSQL 15 server of our own (password auth on TCP), as (port, postgres password); stopped at the end."""
    # under /tmp, not pytest's tmp_path: the postgres user must be able to reach its data folder
    root = Path(tempfile.mkdtemp(prefix="lineage-pg-"))
    password = secrets.token_urlsafe(16)
    port = _free_port()
    started = False
    try:
        shutil.chown(root, "postgres", "postgres")
        pwfile = root / "pw"
        pwfile.write_text(password, encoding="utf-8")
        pwfile.chmod(0o600)
        shutil.chown(pwfile, "postgres", "postgres")
        data = root / "data"
        _as_postgres(
            str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--pwfile", str(pwfile),
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
        )  # fmt: skip
        pwfile.unlink()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root}"
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options, "-w", "start")
        started = True
        yield port, password
    except RuntimeError as exc:  # fail loudly, never skip
        pytest.fail(f"PostgreSQL could not be started: {exc}", pytrace=False)
    finally:
        if started:
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(root / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres(postgres_server: tuple[int, str]) -> Postgres:
    """A fresh database on the session's PostgreSQL server."""
    import psycopg2  # type: ignore[import-untyped]

    port, password = postgres_server
    name = f"lineage_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", password=password, dbname="postgres")
    try:
        conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return Postgres(port=port, database=name, password=password)
