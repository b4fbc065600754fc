"""The test servers are real: PostgreSQL logs in by password only, S3 checks its keys, both survive restarts."""

from __future__ import annotations

import socket
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2  # type: ignore[import-untyped]
import pyarrow as pa
import pytest
import sqlalchemy
from pyarrow import fs
from pyiceberg.catalog.sql import SqlCatalog

from tests.services import Postgres, SeaweedS3, ServiceError


def _engine(postgres: Postgres) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(postgres.sqlalchemy_uri(with_password=True), poolclass=sqlalchemy.NullPool)


def _leftovers(pids: set[int], workdir: Path) -> list[str]:
    """Live processes (``ps``) that are one of ``pids`` or mention ``workdir``, zombies aside."""
    out = subprocess.run(["ps", "-eo", "pid=,stat=,args="], capture_output=True, text=True, check=True).stdout
    rows = (line.split(None, 2) for line in out.splitlines())
    return [
        f"{pid} {args}"
        for pid, state, *rest in rows
        for args in [rest[0] if rest else ""]
        if not state.startswith("Z") and (int(pid) in pids or str(workdir) in args)
    ]


@pytest.fixture
def table(postgres: Postgres) -> Iterator[str]:
    """A fresh table ``(id int, name text)`` in the session's database, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    engine = _engine(postgres)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE TABLE {name} (id int PRIMARY KEY, name text)"))
    yield name
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {name}"))
    engine.dispose()


def _rows(postgres: Postgres, table: str) -> list[tuple[int, str]]:
    engine = _engine(postgres)
    with engine.connect() as conn:
        rows = [
            (int(r[0]), str(r[1])) for r in conn.execute(sqlalchemy.text(f"SELECT id, name FROM {table} ORDER BY id"))
        ]
    engine.dispose()
    return rows


def _insert(postgres: Postgres, table: str, row_id: int, name: str) -> None:
    engine = _engine(postgres)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"INSERT INTO {table} VALUES (:id, :name)"), {"id": row_id, "name": name})
    engine.dispose()


def test_postgres_stores_and_reads_rows_with_the_password(postgres: Postgres, table: str) -> None:
    """A table written through SQLAlchemy+psycopg2 as ``lineage`` with its password reads back."""
    _insert(postgres, table, 1, "alice")
    _insert(postgres, table, 2, "bob")
    assert _rows(postgres, table) == [(1, "alice"), (2, "bob")]
    assert postgres.sqlalchemy_uri() == f"postgresql+psycopg2://lineage@127.0.0.1:{postgres.port}/lineage"
    assert postgres.password not in postgres.sqlalchemy_uri() + repr(postgres) + postgres.jdbc_url()


@pytest.mark.parametrize("password", ["wrong-password", ""])
def test_postgres_refuses_a_wrong_or_missing_password(postgres: Postgres, password: str) -> None:
    """TCP logins need the right password (scram-sha-256): a wrong or empty one is refused."""
    with pytest.raises(psycopg2.OperationalError, match="password"):
        psycopg2.connect(
            host=postgres.host, port=postgres.port, user=postgres.user, password=password, dbname=postgres.database
        )


def test_postgres_keeps_its_data_across_stop_and_kill(postgres: Postgres, table: str) -> None:
    """stop() ends every server process (ps), kill() too; start() again serves the same rows on the same port."""
    _insert(postgres, table, 1, "before stop")
    port, pids = postgres.port, postgres.processes()
    assert len(pids) >= 3  # the postmaster and its helpers
    try:
        postgres.stop()
        assert _leftovers(pids, postgres.workdir) == []
        postgres.start()
        assert postgres.port == port
        _insert(postgres, table, 2, "before kill")
        pids = postgres.processes()
        postgres.kill()
        assert _leftovers(pids, postgres.workdir) == []
    finally:
        if not postgres.processes():
            postgres.start()
    assert _rows(postgres, table) == [(1, "before stop"), (2, "before kill")]


def test_s3_writes_and_reads_an_object(s3: SeaweedS3) -> None:
    """An object put through pyarrow's S3FileSystem with the server's keys reads back byte for byte."""
    store = s3.filesystem()
    path = f"{s3.bucket}/test/{uuid.uuid4().hex}.bin"
    payload = uuid.uuid4().bytes * 1000
    with store.open_output_stream(path) as out:
        out.write(payload)
    with store.open_input_stream(path) as src:
        assert src.read() == payload
    assert s3.endpoint.startswith("http://127.0.0.1:")
    assert s3.secret_key not in repr(s3)


@pytest.mark.parametrize("which", ["access key", "secret key"])
def test_s3_refuses_wrong_keys(s3: SeaweedS3, which: str) -> None:
    """A wrong access key or secret is refused, for reading and for writing."""
    keys = {"access key": {"access_key": "AKWRONGKEY000000"}, "secret key": {"secret_key": "wrong-secret-0000"}}
    store = s3.filesystem(**keys[which])
    with pytest.raises(OSError, match=r"(?i)access ?denied|signature|forbidden|invalid"):
        store.get_file_info(fs.FileSelector(s3.bucket))
    with pytest.raises(OSError, match=r"(?i)access ?denied|signature|forbidden|invalid"):
        with store.open_output_stream(f"{s3.bucket}/intruder.bin") as out:
            out.write(b"x")


def test_s3_keeps_its_data_across_stop_and_kill(s3: SeaweedS3) -> None:
    """stop() ends weed (ps), kill() too; start() again serves the same objects at the same endpoint."""
    path = f"{s3.bucket}/restart/{uuid.uuid4().hex}"
    with s3.filesystem().open_output_stream(path + "-1") as out:
        out.write(b"before stop")
    endpoint, pids = s3.endpoint, s3.processes()
    assert pids
    try:
        s3.stop()
        assert _leftovers(pids, s3.workdir) == []
        s3.start()
        assert s3.endpoint == endpoint
        with s3.filesystem().open_output_stream(path + "-2") as out:
            out.write(b"before kill")
        pids = s3.processes()
        s3.kill()
        assert _leftovers(pids, s3.workdir) == []
    finally:
        if not s3.processes():
            s3.start()
    store = s3.filesystem()
    for suffix, content in (("-1", b"before stop"), ("-2", b"before kill")):
        with store.open_input_stream(path + suffix) as src:
            assert src.read() == content


def test_data_folders_are_private(postgres: Postgres, s3: SeaweedS3) -> None:
    """Both servers' folders and data folders are 0700: no other user reads the catalog or the objects."""
    for folder in (postgres.workdir, postgres.data, s3.workdir, s3.data):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_pyiceberg_sql_catalog_on_postgres_with_s3_warehouse(postgres: Postgres, s3: SeaweedS3) -> None:
    """The SqlCatalog of pyiceberg on the PostgreSQL with its warehouse on S3 appends 3 rows and reads back 3."""
    catalog = SqlCatalog(
        "lineage",
        uri=postgres.sqlalchemy_uri(with_password=True),
        warehouse=f"s3://{s3.bucket}/wh",
        **{
            "s3.endpoint": s3.endpoint,
            "s3.access-key-id": s3.access_key,
            "s3.secret-access-key": s3.secret_key,
            "s3.region": s3.region,
            "s3.path-style-access": "true",
        },
    )
    namespace = f"ns_{uuid.uuid4().hex[:8]}"
    catalog.create_namespace(namespace)
    rows = pa.table({"subject_id": ["a", "b", "c"], "kafka_offset": pa.array([0, 1, 2], pa.int64())})
    created = catalog.create_table(f"{namespace}.events", schema=rows.schema)
    created.append(rows)
    loaded = catalog.load_table(f"{namespace}.events")
    assert loaded.metadata_location.startswith(f"s3://{s3.bucket}/wh/")
    assert loaded.scan().to_arrow().sort_by("kafka_offset").to_pylist() == rows.to_pylist()
    catalog.drop_table(f"{namespace}.events")
    catalog.drop_namespace(namespace)
    catalog.engine.dispose()


@pytest.mark.parametrize("kind", [Postgres, SeaweedS3])
def test_a_server_that_cannot_start_says_why(kind: type[Postgres] | type[SeaweedS3]) -> None:
    """A server whose port is taken fails with an error ending in its log's reason, and leaves no process."""
    server = kind()
    port = server.port if isinstance(server, Postgres) else server.ports["s3.port"]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        try:
            with pytest.raises(ServiceError, match=rf"(?s)(Address already in use|{port}.*not available).*"):
                server.start()
            assert server.processes() == set()
        finally:
            server.close()
