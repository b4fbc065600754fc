"""SIGTERM while the store is slow: inside a rebalance's claim and mid-commit, a consumer still stops with exit 0.

The store is real (PostgreSQL catalog, S3 warehouse) and made slow the way a busy catalog is: the
test holds the lock on the events table's catalog row, so the consumer's commit (a claim in the
rebalance listener, or a flush) waits in PostgreSQL until the test lets it go. The signals land
while it waits; afterwards every offset the broker acknowledged is stored once.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest

from tests.fixtures import wait_until
from tests.ingest.test_exactly_once import (
    START_MARK,
    Fleet,
    Producer,
    _check_exact,
    _messages,
    _shared_store,
    _stored_offsets,
    _topic,
    fleet_root,
)
from tests.services import Postgres, SeaweedS3

pytestmark = pytest.mark.integration

__all__ = ["fleet_root"]  # the fixture, imported so that pytest finds it here

EVENTS = 20_000


def _connect(postgres: Postgres) -> psycopg2.extensions.connection:
    return psycopg2.connect(
        host=postgres.host, port=postgres.port, user=postgres.user, password=postgres.password, dbname=postgres.database
    )


@contextmanager
def _catalog_locked(postgres: Postgres, namespace: str) -> Iterator[None]:
    """Hold the row lock on the namespace's catalog rows: any commit to its tables waits until the block ends."""
    conn = _connect(postgres)
    try:
        with conn.cursor() as cur:  # psycopg2 opens a transaction: the lock lasts until the rollback
            cur.execute("SELECT table_name FROM iceberg_tables WHERE table_namespace = %s FOR UPDATE", (namespace,))
            assert cur.fetchall(), "no table in the catalog to lock"
        yield
    finally:
        conn.rollback()
        conn.close()


def _commit_waiting(postgres: Postgres) -> bool:
    """Whether another session's statement waits for a lock (the consumer's commit, behind ours)."""
    conn = _connect(postgres)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            row = cur.fetchone()
            return row is not None and row[0] > 0
    finally:
        conn.close()


def _delivered(pid: int, sig: int) -> bool:
    """Whether no ``sig`` is pending for the process: the kernel has handed it to the process's handler."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True  # gone
    bit = 1 << (sig - 1)
    return all(
        not int(line.split()[1], 16) & bit for line in status.splitlines() if line.startswith(("SigPnd:", "ShdPnd:"))
    )


def _claimed(fleet: Fleet, name: str) -> bool:
    """Whether its latest start has logged an assignment of partitions (an empty one, first, claims nothing)."""
    log = (fleet.folder(name) / "consumer.log").read_text(encoding="utf-8", errors="replace")
    latest = log.rpartition(START_MARK)[2]
    return any("assigned member=" in line and "partitions=[]" not in line for line in latest.splitlines())


def _stops_cleanly(fleet: Fleet, name: str) -> None:
    proc = fleet.procs[name]
    try:
        code = proc.wait(120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"consumer {name} did not stop in 120 s after SIGTERM:\n{fleet.log_tail(name)}")
    assert code == 0, f"consumer {name} exited with {code} after SIGTERM:\n{fleet.log_tail(name)}"
    log = (fleet.folder(name) / "consumer.log").read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log, fleet.log_tail(name)


def test_sigterm_inside_a_slow_rebalance_and_mid_commit_stops_cleanly_and_stores_every_offset_once(
    kafka_bootstrap: str, postgres: Postgres, s3: SeaweedS3, tmp_path: Path, fleet_root: list[Fleet]
) -> None:
    """SIGTERM while a claim (in the rebalance listener) waits on the catalog, then twice while a commit waits: 0."""
    kafka = _topic(kafka_bootstrap)
    shared = _shared_store(postgres, s3, tmp_path)
    location = shared.location
    namespace = shared.env["LINEAGE_NAMESPACE"]
    fleet = Fleet(kafka, tmp_path, shared.env, secrets=(postgres.password, s3.secret_key))
    fleet_root.append(fleet)
    messages = _messages(EVENTS)
    first = Producer(kafka, messages[: EVENTS // 2], chunks=1, pause_s=0.0)
    first.start()
    placed = first.finish()  # acknowledged before the consumer starts: it has them to read
    location.load(create=True)  # the table's catalog row exists, to be locked

    # 1. inside the rebalance listener: the claim's commit waits behind the lock
    with _catalog_locked(postgres, namespace):
        fleet.start("a")
        proc = fleet.procs["a"]
        wait_until(lambda: _commit_waiting(postgres), "claim waiting on the catalog", proc)
        assert not _claimed(fleet, "a")  # still inside the listener: it logs its assignment after the claim
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: _delivered(proc.pid, signal.SIGTERM), "SIGTERM delivered", proc)
    _stops_cleanly(fleet, "a")

    # 2. mid-commit, and again while it finishes: a flush's commit waits behind the lock
    fleet.start("a")
    proc = fleet.procs["a"]
    wait_until(lambda: _stored_offsets(location, kafka.topic) > 0, "first commit", proc)
    with _catalog_locked(postgres, namespace):
        second = Producer(kafka, messages[EVENTS // 2 :], chunks=1, pause_s=0.0)
        second.start()  # new events to read and commit, while the lock holds: the commit waits
        wait_until(lambda: _commit_waiting(postgres), "commit waiting on the catalog", proc)
        for _ in range(2):
            proc.send_signal(signal.SIGTERM)
            wait_until(lambda: _delivered(proc.pid, signal.SIGTERM), "SIGTERM delivered", proc)
    _stops_cleanly(fleet, "a")

    placed.update(second.finish())
    fleet.start("a", drain=True)
    fleet.finish(240)
    figures = _check_exact(location, kafka.topic, placed)
    print(f"\n[stop while the catalog is slow] events={EVENTS} {figures}")
