"""The two store shapes the benchmarks compare: the embedded default, and PostgreSQL + S3 (SeaweedFS).

The servers are the tests' own (``tests/services.py``), started on 127.0.0.1 by the benchmark and
stopped at its end. Secrets go to child processes by their environment only, never by argv.
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # ``tests.services``: run as a script, only benchmarks/ is on the path

from lineage import Settings  # noqa: E402
from lineage.store import StoreLocation  # noqa: E402
from tests.services import Postgres, SeaweedS3  # noqa: E402


@dataclass(frozen=True)
class StoreShape:
    """One store: its name in the output, the location, and how a child process is pointed at it."""

    name: str
    location: StoreLocation
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict, repr=False)


def embedded(folder: Path) -> StoreShape:
    """The default: a SQLite catalog and a warehouse folder in ``folder``."""
    return StoreShape("embedded", StoreLocation.embedded(folder), ["--store", str(folder)])


def shared(pg: Postgres, s3: SeaweedS3) -> StoreShape:
    """A fresh namespace in the PostgreSQL catalog with its files under its own S3 prefix."""
    namespace = f"b_{uuid.uuid4().hex[:10]}"
    env = {
        "LINEAGE_CATALOG_URI": pg.sqlalchemy_uri(),
        "LINEAGE_CATALOG_PASSWORD": pg.password,
        "LINEAGE_NAMESPACE": namespace,
        "LINEAGE_WAREHOUSE": f"s3://{s3.bucket}/{namespace}",
        "LINEAGE_S3_ENDPOINT": s3.endpoint,
        "LINEAGE_S3_REGION": s3.region,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }
    return StoreShape("postgres+s3", StoreLocation.from_settings(Settings.from_env(env)), [], env)


@contextmanager
def servers() -> Iterator[tuple[Postgres, SeaweedS3]]:
    """A PostgreSQL and a SeaweedFS server for the run; either failing to start ends the benchmark."""
    # SIGTERM (a `kill` of a long run) would end Python without its finally blocks, leaving both
    # servers running: make it an exit, so they are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    pg, s3 = Postgres(), SeaweedS3()
    try:
        pg.start()
        s3.start()
        yield pg, s3
    finally:
        s3.close()
        pg.close()


def load() -> str:
    """The 1, 5 and 15 minute load averages, to print beside every figure (the machine is shared)."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def p99(samples: list[float]) -> float:
    """The 99th percentile (the largest sample below 100 samples)."""
    return statistics.quantiles(samples, n=100)[98] if len(samples) >= 100 else max(samples)
