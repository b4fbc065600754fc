"""The consumer against a store that fails under it: a full disk, the catalog or object store down, bad credentials."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lineage import Settings
from lineage.store import Store
from tests.ingest.test_consumer import _consumer, _events, _produce
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
