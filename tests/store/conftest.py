"""Store fixtures: the Spark jars, and a fresh catalog database per test on the session's PostgreSQL."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.services import Postgres
from tests.spark import spark_jars as fetch_spark_jars


@pytest.fixture(scope="session")
def spark_jars() -> list[Path]:
    """The Iceberg Spark runtime, AWS bundle and PostgreSQL driver jars; fails loudly if Maven cannot fetch them."""
    cache = Path(os.environ.get("LINEAGE_CACHE_DIR", Path(__file__).parents[2] / ".cache"))
    try:
        return fetch_spark_jars(cache)
    except Exception as exc:  # fail loudly, never skip
        pytest.fail(f"the Spark jars could not be fetched: {exc}", pytrace=False)


@dataclass(frozen=True)
class CatalogDatabase:
    """One empty database on the test PostgreSQL server, for an Iceberg SQL/JDBC catalog."""

    server: Postgres
    name: str
    password: str = field(repr=False)

    @property
    def user(self) -> str:
        """The login (the server's owner)."""
        return self.server.user

    @property
    def sqlalchemy_url(self) -> str:
        """The URI for pyiceberg's SqlCatalog (in-process only: it holds the password)."""
        base = self.server.sqlalchemy_uri(with_password=True).rpartition("/")[0]
        return f"{base}/{self.name}"

    @property
    def jdbc_url(self) -> str:
        """The URI for Iceberg's JdbcCatalog (no credentials in it)."""
        return f"{self.server.jdbc_url().rpartition('/')[0]}/{self.name}"


def create_database(postgres: Postgres, name: str) -> CatalogDatabase:
    """A new empty database ``name`` on ``postgres``."""
    import psycopg2  # type: ignore[import-untyped]

    conn = psycopg2.connect(
        host=postgres.host, port=postgres.port, user=postgres.user, password=postgres.password, dbname="postgres"
    )
    try:
        conn.autocommit = True  # CREATE DATABASE refuses to run in a transaction
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return CatalogDatabase(server=postgres, name=name, password=postgres.password)


@pytest.fixture
def catalog_database(postgres: Postgres) -> CatalogDatabase:
    """A fresh database per test: the table names stay the store's own (lineage.events) with no clash."""
    return create_database(postgres, f"lineage_{uuid.uuid4().hex[:12]}")
