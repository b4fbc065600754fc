"""``lineage holdings``, the maintainer process and its signals, ingest's refresh, and the note when behind."""

from __future__ import annotations

import gc
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from consumers import stopping
from consumers.holdings import maintain
from lineage import Codec, Settings, default_taxonomy
from lineage.cli import main
from lineage.errors import StoreUnavailableError
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation
from lineage.store.holdings import load_holdings, read_state, try_load_holdings
from lineage.testing import MemorySink
from lineage.transport.kafka import KafkaEventSink
from lineage.world.organisations import build
from lineage.world.sim import WorldSize, emit

REPO = Path(__file__).parents[2]
TAXONOMY = default_taxonomy()


def _world(subjects: int) -> tuple[list[bytes], str]:
    """The simulated organisations' events, encoded in time order, and one adult of theirs."""
    plans, _ = build(WorldSize(subjects=subjects, days=365), TAXONOMY)
    sink = MemorySink()
    emit(plans, sink, TAXONOMY)
    return [m.value for m in sink.messages], plans[0].adults[0]


def _store(folder: Path, values: list[bytes], *, first: int = 0) -> StoreLocation:
    """Store ``values`` at offsets from ``first`` of one partition (no holdings refresh)."""
    location = StoreLocation.embedded(folder)
    ingestor = Ingestor(location, "events", taxonomy=TAXONOMY)
    for offset, value in enumerate(values, first):
        assert ingestor.add(0, offset, value) is None
    ingestor.flush()
    return location


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _holdings_snapshots(location: StoreLocation) -> int:
    table = try_load_holdings(location)
    return 0 if table is None else len(table.metadata.snapshots)


def test_lineage_holdings_refreshes_once_and_rebuilds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One line on stdout and exit 0: applied, then up to date, then rebuilt; a folder with no store is exit 2."""
    values, _ = _world(5)
    location = _store(tmp_path / "s", values)
    code, out, err = _run(capsys, "holdings", "--store", str(tmp_path / "s"))
    assert code == 0 and err == "" and len(out.splitlines()) == 1 and "events applied" in out
    first = read_state(load_holdings(location))
    code, out, _ = _run(capsys, "holdings", "--store", str(tmp_path / "s"))
    assert code == 0 and out.startswith("holdings up to date with events snapshot")
    assert read_state(load_holdings(location)) == first
    code, out, _ = _run(capsys, "holdings", "--store", str(tmp_path / "s"), "--rebuild")
    assert code == 0 and "events applied" in out
    rebuilt = read_state(load_holdings(location))
    assert rebuilt.snapshot_id != first.snapshot_id and rebuilt.applied == first.applied
    (tmp_path / "empty").mkdir()
    code, out, err = _run(capsys, "holdings", "--store", str(tmp_path / "empty"))
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and err.startswith("lineage: --store: ")
    assert not (tmp_path / "empty" / "catalog.db").exists()  # never created by looking


def test_answers_say_how_far_behind_the_holdings_are(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Events stored after the last refresh: each answer prints one note with their count, none once refreshed."""
    values, person = _world(5)
    half = len(values) // 2
    location = _store(tmp_path / "s", values[:half])
    HoldingsMaintainer(location).refresh()
    _store(tmp_path / "s", values[half:], first=half)
    behind = len(values) - half
    breach = ["breach", "--node", "sf-express", "--from", "2026-01-01T00:00Z", "--to", "2026-02-01T00:00Z"]
    for argv in (["access", person], ["retention", "--now", "2026-11-01T00:00Z"], ["transfers"], breach):
        code, out, err = _run(capsys, *argv, "--store", str(tmp_path / "s"), "--format", "json")
        notes = [line for line in err.splitlines() if "note:" in line]
        assert code == 0 and len(notes) == 1, (argv, err)
        assert f"the holdings are {behind} event(s) behind" in notes[0]
        assert f'"store_snapshot": {read_state(load_holdings(location)).source}' in out
    HoldingsMaintainer(location).refresh()
    code, _, err = _run(capsys, "access", person, "--store", str(tmp_path / "s"))
    assert code == 0 and "note:" not in err
    assert Store(location).behind == 0


def _maintainer(store: Path, log: Path, *argv: str) -> subprocess.Popen[bytes]:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return stopping.spawn(
            [sys.executable, *argv], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO),
            "LINEAGE_STORE_DIR": str(store)}, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT,
        )  # fmt: skip
    finally:
        os.close(fd)


def _wait_for_line(proc: subprocess.Popen[bytes], log: Path, text: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in log.read_text(encoding="utf-8", errors="replace"):
        assert proc.poll() is None, log.read_text(encoding="utf-8", errors="replace")
        assert time.monotonic() < deadline, f"no {text!r} in {timeout_s:.0f} s"
        time.sleep(0.01)


def _stopped_cleanly(proc: subprocess.Popen[bytes], log: Path) -> str:
    try:
        code = proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)
        pytest.fail("no exit within 60 s of SIGTERM")
    text = log.read_text(encoding="utf-8", errors="replace")
    assert code == 0, text
    assert "Traceback" not in text, text
    return text


def test_sigterm_while_the_maintainer_starts_or_refreshes_exits_0_and_commits_nothing(tmp_path: Path) -> None:
    """SIGTERM while starting (imports), and while applying ~25,000 events: exit 0, no holdings snapshot."""
    values, _ = _world(200)
    store = tmp_path / "s"
    location = _store(store, values)
    rng = random.Random(5)
    for i in range(3):  # while starting: Python and the libraries loading
        log = tmp_path / f"start-{i}.log"
        proc = _maintainer(store, log, "-m", "consumers.holdings", "--interval", "0.2")
        time.sleep(rng.uniform(0.15, 0.8))
        proc.send_signal(signal.SIGTERM)
        _stopped_cleanly(proc, log)
        assert _holdings_snapshots(location) == 0
    # while applying: the refresh may finish before the signal lands (0.7 s of work, and a test process
    # descheduled that long at load 10); then try again on a store of its own, up to five times
    for attempt in range(5):
        store = tmp_path / f"s-{attempt}" if attempt else store
        location = _store(store, values) if attempt else location
        log = tmp_path / f"refresh-{attempt}.log"
        proc = _maintainer(store, log, "-m", "consumers.holdings", "--interval", "0.2")
        _wait_for_line(proc, log, "applying new events")
        proc.send_signal(signal.SIGTERM)
        text = _stopped_cleanly(proc, log)
        if "events applied" not in text:  # the signal came while it applied: nothing committed
            assert _holdings_snapshots(location) == 0
            break
    else:
        pytest.fail("every refresh finished before its SIGTERM landed")
    # and the one-off command, rebuilding over holdings already there: they stay as they were
    HoldingsMaintainer(location).refresh()
    before = read_state(load_holdings(location))
    for attempt in range(5):
        log = tmp_path / f"rebuild-{attempt}.log"
        proc = _maintainer(store, log, "-m", "lineage.cli", "holdings", "--rebuild")
        _wait_for_line(proc, log, "applying new events")
        proc.send_signal(signal.SIGTERM)
        text = _stopped_cleanly(proc, log)
        assert read_state(load_holdings(location)) == before  # a rebuild that finished first changes nothing
        if "nothing was committed" in text:
            break
    else:
        pytest.fail("every rebuild finished before its SIGTERM landed")


class _NoWaiting(threading.Event):
    """A stop event that fails when waited on: ``Event.wait`` holds the event's lock for a moment."""

    def wait(self, timeout: float | None = None) -> bool:
        """Refused: a SIGTERM handler setting this event on the same thread would wait for that lock forever."""
        raise AssertionError("the stop event was waited on with Event.wait")


def test_the_maintainer_pauses_without_taking_the_stop_events_lock(tmp_path: Path) -> None:
    """Between refreshes (here: waiting for a store) it reads the flag, never ``Event.wait``s; set, it returns."""
    stop = _NoWaiting()
    setter = threading.Timer(1.0, stop.set)  # another thread: as a signal would, while it pauses
    setter.start()
    try:
        maintain(StoreLocation.embedded(tmp_path / "not-yet"), 0.05, stop)
    finally:
        setter.cancel()
    assert stop.is_set()


def test_ingest_from_a_file_refreshes_the_holdings_unless_told_not_to(tmp_path: Path) -> None:
    """``lineage ingest --from-file`` ends with the holdings up to date; with --no-holdings it leaves none."""
    values, _ = _world(3)
    codec = Codec()
    archive = tmp_path / "archive.avro"
    codec.write_container(archive, [codec.decode_record(v) for v in values])
    for folder, extra in (("a", []), ("b", ["--no-holdings"])):
        command = [sys.executable, "-m", "lineage.cli", "ingest", "--from-file", str(archive),
                   "--store", str(tmp_path / folder), *extra]  # fmt: skip
        proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO, check=False)
        assert proc.returncode == 0, proc.stderr
        location = StoreLocation.embedded(tmp_path / folder)
        if extra:
            assert try_load_holdings(location) is None and "holdings" not in proc.stderr
        else:
            assert "events applied" in proc.stderr
            assert Store(location).behind == 0 and Store(location).count() == len(values)


def test_supervisor_runs_a_holdings_maintainer_and_ends_up_to_date(kafka_settings: Settings, tmp_path: Path) -> None:
    """``consumers.ingest --processes 2`` runs a holdings maintainer too; once the consumers finish, none is behind."""
    values, _ = _world(20)
    sink = KafkaEventSink(kafka_settings)
    for i, value in enumerate(values):
        sink.send(kafka_settings.topic, str(i).encode(), value, f"e{i}")
    sink.close(60)
    assert sink.failures() == []
    proc = subprocess.run(
        [sys.executable, "-m", "consumers.ingest", "--processes", "2", "--exit-when-idle", "6", "--store",
         str(tmp_path / "s"), "--bootstrap-servers", kafka_settings.bootstrap_servers, "--topic",
         kafka_settings.topic, "--group", kafka_settings.topic + ".g"],
        cwd=REPO, env={**os.environ, "LINEAGE_DEAD_LETTER_TOPIC": kafka_settings.dead_letter_topic},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "consumers.holdings" in out or "holdings snapshot" in out, out
    store = Store(tmp_path / "s")
    assert store.count() == len(values) and store.behind == 0, out


def test_a_store_error_that_will_not_pass_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """The holdings' data files damaged, then new events: the maintainer says so on one line and exits 2."""
    values, _ = _world(3)
    half = len(values) // 2
    location = _store(tmp_path / "s", values[:half])
    HoldingsMaintainer(location).refresh()
    for path in (tmp_path / "s" / "warehouse").rglob("*.parquet"):
        if "holdings" in path.parts:
            path.write_bytes(b"not parquet")
    _store(tmp_path / "s", values[half:], first=half)
    log = tmp_path / "maintainer.log"
    proc = _maintainer(tmp_path / "s", log, "-m", "consumers.holdings", "--interval", "0.2")
    assert proc.wait(120) == 2
    lines = [line for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("lineage-holdings:")]
    assert len(lines) == 1 and "corrupt" in lines[0], log.read_text(encoding="utf-8")
    assert "Traceback" not in log.read_text(encoding="utf-8")


def _loop_on_a_clock(
    monkeypatch: pytest.MonkeyPatch, maintainer: type, clock: list[float], pauses: list[float], *, rounds: int
) -> None:
    """``maintain`` runs ``maintainer`` on ``clock``; its pauses are recorded, and it stops after ``rounds``."""

    def pause(stop: threading.Event, seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == rounds:
            stop.set()

    monkeypatch.setattr("lineage.ingest.holdings.HoldingsMaintainer", maintainer)
    monkeypatch.setattr("consumers.holdings._no_catalog_yet", lambda location: False)
    monkeypatch.setattr("consumers.holdings.monotonic", lambda: clock[0])
    monkeypatch.setattr("consumers.stopping.pause", pause)


def test_the_interval_runs_from_one_refresh_start_to_the_next(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A refresh longer than the interval is followed at once; a shorter one folds (unless told not to), then waits."""
    clock = [100.0]
    took = iter([2.5, 0.25])
    pauses: list[float] = []
    budgets: list[float] = []

    class Timed:
        def __init__(self, location: StoreLocation) -> None:
            """Stands for the maintainer: each refresh moves the clock."""

        def refresh(self, *, stop: threading.Event) -> None:
            """Takes the next of ``took``."""
            clock[0] += next(took)

        def fold(self, budget_s: float) -> None:
            """A fold given time takes 0.25 s of it."""
            budgets.append(budget_s)
            clock[0] += 0.25 if budget_s > 0 else 0.0

    _loop_on_a_clock(monkeypatch, Timed, clock, pauses, rounds=2)
    maintain(StoreLocation.embedded(tmp_path / "s"), 1.0, threading.Event())
    assert budgets == [-1.5, 0.75]
    assert pauses == [0.0, 0.5]
    clock[0], took, pauses[:], budgets[:] = 100.0, iter([2.5, 0.25]), [], []
    maintain(StoreLocation.embedded(tmp_path / "s"), 1.0, threading.Event(), fold=False)  # --no-fold
    assert budgets == [] and pauses == [0.0, 0.75]


def test_each_round_settles_the_heap_and_once_an_hour_all_of_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """After each refresh the maintainer settles its heap; a round an hour or more after the last sweep sweeps all."""
    clock = [100.0]
    settles: list[bool] = []
    pauses: list[float] = []

    class Slow:
        def __init__(self, location: StoreLocation) -> None:
            """Stands for the maintainer: each refresh takes 2,000 s of the clock."""

        def refresh(self, *, stop: threading.Event) -> None:
            """Moves the clock."""
            clock[0] += 2000.0

        def fold(self, budget_s: float) -> None:
            """No time to fold."""

    _loop_on_a_clock(monkeypatch, Slow, clock, pauses, rounds=3)
    monkeypatch.setattr("lineage.process.settle_heap", lambda *, everything=False: settles.append(everything))
    maintain(StoreLocation.embedded(tmp_path / "s"), 1.0, threading.Event())
    assert settles == [False, True, False]  # 2,000 s, then 4,000 s since the start (a sweep), then 2,000 s


def test_the_collector_waits_during_a_round_and_runs_again_after_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The collector is off while a round refreshes and folds, and on again after it, a failed one too."""
    seen: list[tuple[str, bool]] = []
    rounds = iter([None, StoreUnavailableError("the catalog did not answer", path="s")])

    class Watched:
        def __init__(self, location: StoreLocation) -> None:
            """Stands for the maintainer: records whether the collector runs in each call."""

        def refresh(self, *, stop: threading.Event) -> None:
            """The first round succeeds, the second fails with an error that may pass."""
            seen.append(("refresh", gc.isenabled()))
            if (failure := next(rounds)) is not None:
                raise failure

        def fold(self, budget_s: float) -> None:
            """Records only."""
            seen.append(("fold", gc.isenabled()))

    def pause(stop: threading.Event, seconds: float) -> None:
        seen.append(("pause", gc.isenabled()))
        if sum(1 for what, _ in seen if what == "pause") == 2:
            stop.set()

    _loop_on_a_clock(monkeypatch, Watched, [100.0], [], rounds=2)
    monkeypatch.setattr("consumers.stopping.pause", pause)
    assert gc.isenabled()
    maintain(StoreLocation.embedded(tmp_path / "s"), 1.0, threading.Event())
    assert seen == [("refresh", False), ("fold", False), ("pause", True), ("refresh", False), ("pause", True)]
    assert gc.isenabled()


def test_the_deployed_maintainer_holds_back_partitions_ahead_in_event_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``consumers.holdings`` refreshes with the holdback on (it refreshes again soon); the class alone has it off."""
    seen: list[bool] = []

    class Watched(HoldingsMaintainer):
        def refresh(self, *, rebuild: bool = False, stop: threading.Event | None = None) -> Any:
            """Records whether the holdback is on."""
            seen.append(self.holdback)

    _loop_on_a_clock(monkeypatch, Watched, [100.0], [], rounds=1)
    maintain(StoreLocation.embedded(tmp_path / "s"), 1.0, threading.Event(), fold=False)
    assert seen == [True] and not HoldingsMaintainer(StoreLocation.embedded(tmp_path / "s")).holdback
