"""Many readers at once: sessions of one ``Store`` on several threads, each on its own cursor."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lineage import default_taxonomy
from lineage.answers import access_request, erasure_plan
from lineage.errors import ConfigurationError
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.ingest.pipeline import Ingestor
from lineage.store import Store, StoreLocation
from lineage.testing import MemorySink
from lineage.world.organisations import build
from lineage.world.sim import WorldSize, emit

TAXONOMY = default_taxonomy()
SIZE = WorldSize(subjects=30, days=120, seed=11, violations=1)
DEADLINE_S = 120.0  # generous: CI runs at load 10 on 2 cores


def _world_store(folder: Path, *, upto: int | None = None) -> tuple[Store, list[bytes]]:
    """A store of a small simulated world (its first ``upto`` messages), and all the world's messages."""
    plans, _ = build(SIZE, TAXONOMY, ["mall"])
    sink = MemorySink()
    emit(plans, sink, TAXONOMY)
    messages = [m.value for m in sink.messages]
    _ingest(folder, messages, 0, upto if upto is not None else len(messages))
    return Store(folder), messages


def _ingest(folder: Path, messages: list[bytes], start: int, stop: int) -> None:
    ingestor = Ingestor(StoreLocation.embedded(folder), "events", taxonomy=TAXONOMY)
    for offset in range(start, stop):
        assert ingestor.add(0, offset, messages[offset]) is None
    ingestor.flush()
    HoldingsMaintainer(StoreLocation.embedded(folder)).refresh()


def _in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``work`` on a new thread; its result (or exception) lands in the dict returned."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _holding_a_query_open(store: Store, entered: threading.Event, release: threading.Event) -> int:
    """One session whose query stays running inside DuckDB until ``release`` (a UDF that waits)."""

    def hold(_: int) -> int:
        entered.set()
        assert release.wait(DEADLINE_S), "never released"
        return 1

    with store.session() as q:
        cursor = q._con  # the session's own cursor: this test's slow query is not one of queries/
        cursor.create_function("hold", hold, ["BIGINT"], "BIGINT")
        return int(cursor.sql("SELECT hold(1) AS n").fetchall()[0][0])


def _while_a_query_runs(store: Store, work: Callable[[], Any]) -> Any:
    """``work``'s result, asserting it finished on another thread while one session's query was in flight."""
    entered, release = threading.Event(), threading.Event()
    slow, slow_out = _in_thread(lambda: _holding_a_query_open(store, entered, release))
    try:
        assert entered.wait(DEADLINE_S), "the slow query never started"
        quick, quick_out = _in_thread(work)
        quick.join(DEADLINE_S)
        finished_first = not quick.is_alive()
        still_running = slow.is_alive() and not release.is_set()
    finally:
        release.set()
        slow.join(DEADLINE_S)
    assert finished_first and still_running, "the quick session waited for the slow one"
    assert slow_out == {"value": 1}
    assert "error" not in quick_out, quick_out["error"]
    return quick_out["value"]


def test_a_quick_read_finishes_while_another_threads_query_is_still_running(tmp_path: Path) -> None:
    """One session's query in flight does not block another thread's session: the second ends first."""
    store, _ = _world_store(tmp_path / "store")
    assert _while_a_query_runs(store, lambda: _holders(store))


def _holders(store: Store) -> list[str]:
    with store.session() as q:
        return sorted(r["name"] for r in q.rows("holders"))


def test_answers_on_many_threads_at_once_equal_the_answers_one_at_a_time(tmp_path: Path) -> None:
    """Eight threads asking access and erasure at once get exactly the answers asked one at a time.

    Each session reads on its own cursor of the shared connection: no thread gets another's rows.
    """
    store, _ = _world_store(tmp_path / "store")
    subjects = [r["subject_id"] for r in store.sql(
        "SELECT DISTINCT subject_id FROM events WHERE subject_id IS NOT NULL ORDER BY 1 LIMIT 8")]  # fmt: skip
    assert len(subjects) == 8

    def ask(subject: str) -> tuple[Any, Any]:
        return (access_request(store, subject, TAXONOMY, SIZE.end), erasure_plan(store, subject, TAXONOMY, SIZE.end))

    alone = {s: ask(s) for s in subjects}
    assert any(a.holds_data for a, _ in alone.values())
    start = threading.Barrier(len(subjects))
    runs = [_in_thread(lambda s=s: (start.wait(DEADLINE_S), ask(s))[1]) for s in subjects]  # type: ignore[misc]
    for (thread, _), subject in zip(runs, subjects, strict=True):
        thread.join(DEADLINE_S)
        assert not thread.is_alive(), f"thread for {subject} did not finish"
    for (_, out), subject in zip(runs, subjects, strict=True):
        assert out.get("value") == alone[subject], out.get("error")


def test_cursors_of_a_store_read_through_registered_datasets_see_the_views(tmp_path: Path) -> None:
    """A store whose path holds a backslash is read through registered datasets: a second cursor has them too."""
    store, _ = _world_store(tmp_path / "back\\slash")
    holders = _while_a_query_runs(store, lambda: _holders(store))  # a second cursor, made while the first is busy
    assert holders and holders == sorted(r["name"] for r in Store(tmp_path / "back\\slash").rows("holders"))


def test_a_session_begun_on_an_old_snapshot_ends_on_it_while_new_sessions_read_the_new_one(tmp_path: Path) -> None:
    """New events committed mid-session: that session keeps reading its snapshot; the next one reads the new."""
    folder = tmp_path / "store"
    store, messages = _world_store(folder, upto=100)
    with store.session() as old:
        first, old_snapshot = old.rows("holders"), store.snapshot_id
        _ingest(folder, messages, 100, len(messages))
        with store.session() as new:
            newer, new_snapshot = new.rows("holders"), store.snapshot_id
        assert old.rows("holders") == first  # its connection stays open until it ends
    assert old_snapshot is not None and new_snapshot not in (None, old_snapshot)
    fresh = sorted(r["name"] for r in Store(folder).rows("holders"))
    assert _holders(store) == sorted(r["name"] for r in newer) == fresh


def test_a_store_connection_draws_no_progress_bar(tmp_path: Path) -> None:
    """DuckDB's progress bar is off: a query past 2 s under load must not print into a command's stdout."""
    store, _ = _world_store(tmp_path)
    setting = store.connect().execute("SELECT current_setting('enable_progress_bar')").fetchone()
    assert setting == (False,)


def test_a_store_given_threads_reads_on_that_many_and_answers_the_same(tmp_path: Path) -> None:
    """``threads=1`` sets DuckDB's threads for the store and its pinned copies; the answers do not change."""
    store, _ = _world_store(tmp_path / "store")
    one = Store(tmp_path / "store", threads=1)
    assert one.connect().execute("SELECT current_setting('threads')").fetchone() == (1,)
    with one.pinned().session() as q:
        assert q.rows("holders") == store.rows("holders")
    subject = store.sql("SELECT min(subject_id) AS s FROM events")[0]["s"]
    assert access_request(one, subject, TAXONOMY, SIZE.end) == access_request(store, subject, TAXONOMY, SIZE.end)


def test_a_store_refuses_fewer_than_one_thread(tmp_path: Path) -> None:
    """``threads=0`` is a configuration error naming the setting, before anything is read."""
    with pytest.raises(ConfigurationError, match="threads: must be at least 1"):
        Store(tmp_path / "store", threads=0)
