"""``lineage retain``: events older than a cut-off out of every file of the store, the holdings and registers kept."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from lineage import Codec
from lineage.answers import access_request, breach_impact, retention_register, transfers_register
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation
from lineage.store.retention import RETENTIONS, retire_events
from tests.fixtures import one_line_failure, run_cli, wait_until
from tests.store.test_forget import REPO, SIZE, TAXONOMY, _store, _world

CUTOFF = SIZE.end - timedelta(days=45)  # the world's 90 days: half of its events go


def _micros(at: datetime) -> int:
    return int(at.timestamp()) * 1_000_000 + at.microsecond


def _people() -> tuple[str, ...]:
    values, ids, others = _world()
    return (ids[0], *others)


def _answers(location: StoreLocation) -> dict[str, Any]:
    """What retention must keep: each person's holdings and recipients, the transfer and retention registers."""
    store = Store(location)
    try:
        reports = {p: access_request(store, p, TAXONOMY, SIZE.end) for p in _people()}
        return {
            "holdings": {p: r.holdings for p, r in reports.items()},
            "recipients": {p: r.recipients for p, r in reports.items()},
            "transfers": transfers_register(store, TAXONOMY, SIZE.end),
            "retention": retention_register(store, SIZE.end),
        }
    finally:
        store.close()


def _event_times(folder: Path, *, consents: bool = False) -> list[datetime]:
    """The earliest ``occurred_at`` of every Parquet file of the events table on disk (referenced or not).

    Consent events aside unless ``consents``: retention keeps them (the proof a kept use relies on).
    """
    found = []
    # the events table's folder alone: a run killed while refreshing the holdings leaves a half-written
    # holdings file there (an orphan until ``compact``), which no reader opens and pyarrow cannot read
    for path in (folder / "warehouse" / "lineage" / "events").rglob("*.parquet"):
        table = pq.read_table(path)
        if "occurred_at" in table.column_names and table.num_rows and "kafka_offset" in table.column_names:
            if not consents:
                table = table.filter(pc.not_equal(table.column("event_type"), "CONSENT"))
            if table.num_rows:
                found.append(pc.min(table.column("occurred_at")).as_py())
    return found


def test_retain_leaves_no_file_holding_an_older_event_and_keeps_a_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After retain, no data file on disk holds an event before the cut-off but consents; counts and a record kept."""
    values, _, _ = _world()
    folder = tmp_path / "store"
    location = _store(folder, values)
    assert min(_event_times(folder)) < CUTOFF
    code, out, err = run_cli(capsys, "retain", "--before", CUTOFF.isoformat(), "--store", str(folder), "--grace", "0")
    assert code == 0, err
    assert "events rows 0" not in out and "pins removed audit-2026" in out
    assert min(_event_times(folder)) >= CUTOFF
    assert min(_event_times(folder, consents=True)) < CUTOFF  # the consents before the cut-off stay
    assert "audit-2026" not in location.load().metadata.refs
    record = location.catalog().load_table(location.identifier(RETENTIONS)).scan().to_arrow().to_pylist()
    assert [r["cutoff"] for r in record] == [CUTOFF] and record[0]["events_rows"] > 0
    assert [p for p in folder.rglob("*") if p.stat().st_mode & 0o077] == []  # what retain wrote is private too
    again, out, err = run_cli(capsys, "retain", "--before", CUTOFF.isoformat(), "--store", str(folder))
    assert again == 0 and "events rows 0" in out and "snapshots expired 0" in out  # a second run finds nothing


def test_retain_keeps_holdings_and_registers_and_drops_only_older_events_from_access(tmp_path: Path) -> None:
    """Holdings, recipients and both registers are unchanged; access lists no consent before the cut-off."""
    values, _, _ = _world()
    folder = tmp_path / "store"
    location = _store(folder, values)
    before = _answers(location)
    retired = retire_events(location, CUTOFF, refresh_holdings=HoldingsMaintainer(location).refresh, grace_s=0)
    assert retired.events_rows > 0
    assert _answers(location) == before
    store = Store(location)
    try:
        consents = [c for p in _people() for c in access_request(store, p, TAXONOMY, SIZE.end).consents]
    finally:
        store.close()
    assert consents and all(c["occurred_at"] >= CUTOFF for c in consents)


def test_a_rebuild_after_retention_keeps_the_holdings_the_retired_events_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``lineage holdings --rebuild`` after retain starts from the holdings at the cut-off: the answers stay."""
    values, _, _ = _world()
    folder = tmp_path / "store"
    location = _store(folder, values)
    before = _answers(location)
    code, _, err = run_cli(capsys, "retain", "--before", CUTOFF.isoformat(), "--store", str(folder), "--grace", "0")
    assert code == 0, err
    code, _, err = run_cli(capsys, "holdings", "--rebuild", "--store", str(folder))
    assert code == 0, err
    assert _answers(location) == before


def test_retain_reads_the_period_from_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no option, LINEAGE_KEEP_EVENTS_DAYS sets the period: events older than that many days go."""
    values, _, _ = _world()
    folder = tmp_path / "store"
    _store(folder, values[:400])
    days = (datetime.now(UTC) - CUTOFF).days
    monkeypatch.setenv("LINEAGE_KEEP_EVENTS_DAYS", str(days))
    code, out, err = run_cli(capsys, "retain", "--store", str(folder), "--grace", "0")
    assert code == 0, err
    assert f"before {(datetime.now(UTC) - timedelta(days=days)).date()}" in out
    assert min(_event_times(folder)) >= datetime.now(UTC) - timedelta(days=days, minutes=10)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--older-than", "0"], "--older-than"),
        (["--older-than", "-3"], "--older-than"),
        (["--older-than", "soon"], "--older-than"),
        (["--before", "2999-01-01T00:00Z"], "in the future"),
        (["--before", "2026-01-01T00:00"], "--before"),
        ([], "--older-than: give a number of days"),
    ],
)
def test_retain_refuses_bad_input_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str], expected: str
) -> None:
    """A zero or negative period, a cut-off in the future or without an offset, or none at all: one line, exit 2."""
    monkeypatch.delenv("LINEAGE_KEEP_EVENTS_DAYS", raising=False)
    values, _, _ = _world()
    folder = tmp_path / "store"
    location = _store(folder, values[:100])
    snapshots = len(location.load().metadata.snapshots)
    code, _, err = run_cli(capsys, "retain", *argv, "--store", str(folder))
    assert expected in one_line_failure(code, err)
    assert len(location.load().metadata.snapshots) == snapshots  # nothing changed


def _retain_process(folder: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "lineage.cli", "retain", "--before", CUTOFF.isoformat(), "--store", str(folder)]
    return subprocess.Popen([*argv, "--grace", "0"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_retain_killed_at_random_completes_on_rerun(tmp_path: Path) -> None:
    """Retain killed -9 at a random moment, then run again: no older event left on disk, the answers kept."""
    values, _, _ = _world()
    timing = tmp_path / "timing"  # built apart: a copy's catalog would name the original's files
    _store(timing, values)
    started = time.monotonic()
    timed = _retain_process(timing)
    _, timed_err = timed.communicate(timeout=600)
    assert timed.returncode == 0, timed_err.decode()
    took = time.monotonic() - started
    rng = random.Random(int(os.environ.get("LINEAGE_TEST_SEED", "22")))
    for attempt in range(5):  # a loaded machine may finish a run before its moment: a fresh store, another moment
        folder = tmp_path / f"store-{attempt}"
        location = _store(folder, values)
        before = _answers(location)
        proc = _retain_process(folder)
        deadline = time.monotonic() + rng.uniform(0.2, 0.8) * took
        wait_until(
            lambda p=proc, d=deadline: time.monotonic() >= d or p.poll() is not None,  # type: ignore[misc]
            "the kill moment",
            timeout_s=600,
        )
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=120)
        proc.communicate()
        if killed:
            break
    assert killed  # a kill landed while retain was working
    final = _retain_process(folder)
    _, err = final.communicate(timeout=600)
    assert final.returncode == 0, err.decode()
    assert min(_event_times(folder)) >= CUTOFF
    assert _answers(location) == before


def test_an_event_older_than_the_cut_off_arriving_late_leaves_the_holdings_whole(tmp_path: Path) -> None:
    """A late event from before the cut-off rolls the holdings back to the cut-off only: every answer stays."""
    values, _, _ = _world()
    location = _store(tmp_path / "store", values)
    retire_events(location, CUTOFF, refresh_holdings=HoldingsMaintainer(location).refresh, grace_s=0)
    before = _answers(location)
    codec = Codec()
    first = next(r for r in map(codec.decode_record, values) if r["event_type"] == "COLLECTED")
    late = first | {"event_id": str(uuid.uuid4()), "subject_id": "late-1", "linked_subject_ids": [],
                    "occurred_at": _micros(CUTOFF - timedelta(days=10))}  # fmt: skip
    ingestor = Ingestor(location, "late", taxonomy=TAXONOMY)
    assert ingestor.add(0, 0, codec.encode_record(late)) is None
    ingestor.flush()
    done = HoldingsMaintainer(location).refresh()
    assert done.rolled_back_to == _micros(CUTOFF)  # not to the late event's own time: those events are gone
    assert _answers(location) == before


def test_retiring_every_event_keeps_who_a_breach_exposed(tmp_path: Path) -> None:
    """With every event retired, a breach report names the same holders, subjects, categories and times."""
    values, _, _ = _world()
    location = _store(tmp_path / "store", values)

    def exposed() -> list[tuple[Any, ...]]:
        store = Store(location)
        try:
            report = breach_impact(store, ["amap-location-sdk"], SIZE.start, SIZE.end, TAXONOMY, SIZE.end)
        finally:
            store.close()
        return [(r["subject"], r["category"], r["holder"], r["reached_at"]) for r in report.records]

    before = exposed()
    retired = retire_events(location, SIZE.end + timedelta(days=1), refresh_holdings=lambda: None, grace_s=0)
    codec = Codec()
    consents = sum(codec.decode_record(v)["event_type"] == "CONSENT" for v in values)
    assert retired.events_rows == len(values) - consents and consents and before  # consents stay
    assert exposed() == before


# a retain killed once its expiry has committed, before it deletes the files only those snapshots named
_KILLED_AFTER_EXPIRY = """
import os, sys
import lineage.store.forget as forget
from lineage.cli import main
referenced, calls = forget._referenced, []
def die(table):
    calls.append(table)
    if len(calls) == 2:  # the first lists the files before the expiry, the second after it
        os._exit(9)
    return referenced(table)
forget._referenced = die
sys.exit(main(sys.argv[1:]))
"""


def test_a_rerun_after_a_kill_past_the_expiry_deletes_the_files_left(tmp_path: Path) -> None:
    """Killed after expiring the old snapshots but before deleting their files: the re-run deletes them."""
    values, _, _ = _world()
    folder = tmp_path / "store"
    _store(folder, values)
    argv = ["retain", "--before", CUTOFF.isoformat(), "--store", str(folder), "--grace", "0"]
    killed = subprocess.run([sys.executable, "-c", _KILLED_AFTER_EXPIRY, *argv], cwd=REPO, capture_output=True)
    assert killed.returncode == 9, killed.stderr.decode()
    assert min(_event_times(folder)) < CUTOFF  # the retired files are still on disk, unreferenced
    rerun = subprocess.run([sys.executable, "-m", "lineage.cli", *argv], cwd=REPO, capture_output=True)
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert min(_event_times(folder)) >= CUTOFF
