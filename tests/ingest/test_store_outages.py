"""The consumer against a store that fails under it: a full disk, the catalog or object store down, bad credentials."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lineage import Settings
from lineage.errors import StoreError
from lineage.store import Store, StoreLocation
from tests.ingest.test_consumer import REPO, _consumer, _events, _produce
from tests.services import Postgres, SeaweedS3
from tests.store.test_faults import fill, tmpfs


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs for this test."""
    yield from tmpfs(tmp_path)


def _exact(store: Store, settings: Settings, expected: list[str]) -> None:
    """Every produced event stored once, and every (partition, offset) once."""
    assert sorted(store.event_ids()) == sorted(expected)
    rows = store.sql(
        "SELECT count(*) AS n, count(DISTINCT (kafka_partition, kafka_offset)) AS d FROM events WHERE origin = $o",
        {"o": settings.topic},
    )[0]
    assert rows["n"] == rows["d"] == len(expected)


def test_a_full_disk_stops_the_consumer_with_one_line_and_a_rerun_stores_every_offset_once(
    kafka_settings: Settings, small_disk: Path
) -> None:
    """The embedded store's disk fills mid-ingest: exit 2, one line saying so; after space is freed, exact."""
    messages = _events(30_000, prefix=f"disk-{uuid.uuid4().hex[:6]}")
    _produce(kafka_settings, messages)
    store_dir = small_disk / "store"
    ballast = fill(small_disk, leave_bytes=600_000)
    proc = _consumer(kafka_settings, store_dir, "--segment-rows", "2000", "--exit-when-idle", "4")
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("lineage: ") and "disk" in last and "full" in last, out
    assert sum(line.startswith("lineage: ") for line in out.splitlines()) == 1, out
    stored = Store(store_dir).count()
    assert 0 < stored < len(messages), "the disk should have filled mid-ingest"

    ballast.unlink()
    rerun = _consumer(kafka_settings, store_dir, "--segment-rows", "2000", "--exit-when-idle", "4")
    out, _ = rerun.communicate(timeout=180)
    assert rerun.returncode == 0, out
    _exact(Store(store_dir), kafka_settings, [e for e, _, _ in messages])


def _shared(postgres: Postgres, s3: SeaweedS3) -> dict[str, str]:
    """The environment of a consumer on the shared catalog and object store, in a fresh namespace and prefix."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    return {
        "LINEAGE_CATALOG_URI": postgres.sqlalchemy_uri(),
        "LINEAGE_CATALOG_PASSWORD": postgres.password,
        "LINEAGE_NAMESPACE": name,
        "LINEAGE_WAREHOUSE": f"s3://{s3.bucket}/{name}",
        "LINEAGE_S3_ENDPOINT": s3.endpoint,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }


def _location(env: dict[str, str]) -> StoreLocation:
    """The store that environment names, as a reader in this process sees it."""
    return StoreLocation.from_settings(Settings.from_env(env))


def _ingest(settings: Settings, env: dict[str, str], store_dir: Path, *extra: str) -> subprocess.Popen[str]:
    """``python -m consumers.ingest`` on the shared store named by ``env`` (secrets by environment only)."""
    return subprocess.Popen(
        [
            sys.executable, "-m", "consumers.ingest", "--store", str(store_dir),
            "--bootstrap-servers", settings.bootstrap_servers, "--topic", settings.topic,
            "--group", settings.topic + ".group", "--segment-rows", "2000", *extra,
        ],
        cwd=REPO,
        env={**os.environ, **env, "LINEAGE_DEAD_LETTER_TOPIC": settings.dead_letter_topic},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def _wait_for(location: StoreLocation, rows: int, proc: subprocess.Popen[str], timeout_s: float = 120) -> None:
    """Wait until the store holds ``rows`` rows (failing if the consumer died first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        try:
            if Store(location).holds_events() and Store(location).count() >= rows:
                return
        except StoreError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the consumer did not store {rows} rows in {timeout_s:.0f} s")


def _stops_with_one_line(proc: subprocess.Popen[str], *words: str, secrets: tuple[str, ...] = ()) -> str:
    """The consumer exits 2 with one ``lineage:`` line containing ``words``, no traceback, no secret; return it."""
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    lines = [line for line in out.splitlines() if line.startswith("lineage: ")]
    assert len(lines) == 1, out
    for word in words:
        assert word in lines[0], out
    for secret in secrets:
        assert secret not in out
    return lines[0]


def test_the_catalog_going_down_mid_ingest_stops_with_one_line_and_a_rerun_is_exact(
    kafka_settings: Settings, postgres: Postgres, s3: SeaweedS3, tmp_path: Path
) -> None:
    """PostgreSQL stops while the consumer runs: one line "catalog ... did not answer"; restarted, every offset once."""
    env = _shared(postgres, s3)
    location = _location(env)
    first, second = _events(6000, prefix="pg-a"), _events(6000, prefix="pg-b")
    _produce(kafka_settings, first)
    proc = _ingest(kafka_settings, env, tmp_path, "--exit-when-idle", "60")
    try:
        _wait_for(location, len(first), proc)
        postgres.stop()
        _produce(kafka_settings, second)  # the consumer reads these and cannot commit them
        _stops_with_one_line(proc, "catalog", "did not answer", secrets=(postgres.password,))
        code, err = _cli("access", "pg-a-1", env=env)  # a reader meanwhile: one line too
        assert code == 2 and len(err.strip().splitlines()) == 1 and "did not answer" in err, err
    finally:
        proc.kill()
        proc.communicate()
        postgres.start()
    rerun = _ingest(kafka_settings, env, tmp_path, "--exit-when-idle", "4")
    out, _ = rerun.communicate(timeout=180)
    assert rerun.returncode == 0, out
    _exact(Store(location), kafka_settings, [e for e, _, _ in first + second])


def _cli(*argv: str, env: dict[str, str]) -> tuple[int, str]:
    """Run ``lineage ...`` as a process with ``env`` added; return (exit code, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "lineage.cli", *argv], cwd=REPO, env={**os.environ, **env},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return proc.returncode, proc.stderr


def test_the_object_store_going_down_mid_ingest_stops_with_one_line_and_a_rerun_is_exact(
    kafka_settings: Settings, postgres: Postgres, s3: SeaweedS3, tmp_path: Path
) -> None:
    """SeaweedFS stops while the consumer runs: one line "object store ... did not answer"; restarted, exact."""
    env = _shared(postgres, s3)
    location = _location(env)
    first, second = _events(6000, prefix="s3-a"), _events(6000, prefix="s3-b")
    _produce(kafka_settings, first)
    proc = _ingest(kafka_settings, env, tmp_path, "--exit-when-idle", "60")
    try:
        _wait_for(location, len(first), proc)
        s3.stop()
        _produce(kafka_settings, second)
        _stops_with_one_line(proc, "object store", "did not answer", secrets=(s3.secret_key,))
        code, err = _cli("access", "s3-a-1", env=env)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "did not answer" in err, err
    finally:
        proc.kill()
        proc.communicate()
        s3.start()
    rerun = _ingest(kafka_settings, env, tmp_path, "--exit-when-idle", "4")
    out, _ = rerun.communicate(timeout=180)
    assert rerun.returncode == 0, out
    _exact(Store(location), kafka_settings, [e for e, _, _ in first + second])


WRONG = {
    "catalog password": {"LINEAGE_CATALOG_PASSWORD": "wrong-pw-" + uuid.uuid4().hex},
    "s3 keys": {"AWS_ACCESS_KEY_ID": "WRONGKEY" + uuid.uuid4().hex[:12], "AWS_SECRET_ACCESS_KEY": uuid.uuid4().hex},
}
NAMED = {"catalog password": ("LINEAGE_CATALOG_PASSWORD",), "s3 keys": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}


@pytest.mark.parametrize("wrong", sorted(WRONG))
def test_bad_credentials_are_one_line_naming_the_setting_for_readers_and_the_consumer(
    kafka_settings: Settings, postgres: Postgres, s3: SeaweedS3, tmp_path: Path, wrong: str
) -> None:
    """A wrong catalog password or wrong S3 keys: exit 2 from `access` and `ingest`, one line naming it, no secret."""
    env = _shared(postgres, s3)
    messages = _events(500, prefix="cred")
    _produce(kafka_settings, messages)
    ok = _ingest(kafka_settings, env, tmp_path, "--exit-when-idle", "4")
    assert ok.communicate(timeout=180)[0] is not None and ok.returncode == 0
    bad = {**env, **WRONG[wrong]}
    secrets = (*WRONG[wrong].values(), postgres.password, s3.secret_key)
    code, err = _cli("access", "cred-1", env=bad)
    assert code == 2 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    for name in NAMED[wrong]:
        assert name in err, err
    assert not any(secret in err for secret in secrets)
    more = _events(100, prefix="cred-more")
    _produce(kafka_settings, more)
    _stops_with_one_line(
        _ingest(kafka_settings, bad, tmp_path, "--exit-when-idle", "4"), *NAMED[wrong], secrets=secrets
    )
    again = _ingest(kafka_settings, env, tmp_path, "--exit-when-idle", "4")  # the right credentials: nothing lost
    assert again.communicate(timeout=180)[0] is not None and again.returncode == 0
    _exact(Store(_location(env)), kafka_settings, [e for e, _, _ in messages + more])
