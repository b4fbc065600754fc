"""Breach assessments kept in the console database: across a restart, bounded in number and in memory."""

from __future__ import annotations

import csv
import gc
import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import lineage.service.answers as service_module  # where every door's breach query runs
from lineage.answers import BreachReport
from lineage.console.app import Console, create_app
from lineage.console.db import ConsoleDB
from lineage.console.server import build_console
from lineage.console.service import MAX_JOBS, MAX_JOBS_PER_USER, BreachBusy
from tests.console.conftest import HOSTILE_SYSTEM, LINKED, PASSWORD, TAXONOMY, World, csrf_of, sign_in

Clients = Callable[[str | None], TestClient]
WINDOW = {"start": "2026-01-01T00:00", "end": "2026-12-01T00:00"}  # as a datetime-local input sends it


def _wait(what: str, done: Callable[[], bool], deadline_s: float = 120.0) -> None:
    end = time.monotonic() + deadline_s
    while not done():
        if time.monotonic() > end:
            pytest.fail(f"{what} not within {deadline_s:.0f} s")
        time.sleep(0.1)


def _start(client: TestClient, case: str, holders: list[str]) -> Any:
    form = {"csrf": csrf_of(client.get("/breach").text), "case_reference": case, "holders": holders, **WINDOW}
    return client.post("/breach", data=form, follow_redirects=False)


def _finished(console: Console, owner: str, job_id: str) -> bool:
    job = console.service.job(owner, job_id)
    return job is not None and job.status != "running"


def _affected(console: Console, job_id: str) -> int:
    with console.service.db.tx() as tx:
        found = tx.one("SELECT count(*) AS n FROM console_breach_affected WHERE breach_id = :id", {"id": job_id})
    return int(found["n"]) if found else 0


def test_an_assessment_is_kept_and_reopens_after_a_restart(
    world: World, console: Console, client_for: Clients, tmp_path: Path
) -> None:
    """Run, stop the server, start a new one on the same database: listed, its summary, plan and people are there."""
    r = _start(client_for("responder"), "INC-KEEP", [HOSTILE_SYSTEM])
    assert r.status_code == 303
    job_id = r.headers["location"].rsplit("/", 1)[1]
    _wait("the breach query", lambda: _finished(console, "responder", job_id))
    console.service.close()
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")  # the restarted server's own connection
    again = build_console(world.store, TAXONOMY, db, policies=world.policies)  # type: ignore[arg-type]
    try:
        with TestClient(create_app(again), base_url="http://127.0.0.1") as client:
            sign_in(client, "responder", PASSWORD)
            assert f"/breach/jobs/{job_id}" in client.get("/breach").text
            page = client.get(f"/breach/jobs/{job_id}").text
            assert "notification plan" in page and "INC-KEEP" in page
            plan = list(csv.DictReader(io.StringIO(client.get(f"/breach/jobs/{job_id}/plan.csv").text)))
            assert {row["regime"] for row in plan} >= {"GDPR", "PIPL"} and all(row["table"] for row in plan)
            kept = client.get(f"/breach/jobs/{job_id}/plan.json")
            assert kept.headers["content-disposition"] == 'attachment; filename="breach-INC-KEEP-plan.json"'
            same = json.loads(kept.text)
            assert same["case_reference"] == "INC-KEEP"
            assert [p["regime"] for p in same["notification_plan"]] == [row["regime"] for row in plan]
            affected = client.get(f"/breach/jobs/{job_id}/affected.csv").text.splitlines()
            assert affected[0].startswith("subject,jurisdiction,age_band,category,holder")
            assert any(LINKED[0] in line for line in affected[1:])
            job = again.service.job("responder", job_id)
            assert job is not None and job.records == len(affected) - 1
    finally:
        again.service.close()
        db.close()


def test_a_query_running_at_a_restart_is_marked_failed(world: World, console: Console, tmp_path: Path) -> None:
    """A query whose process has ended says so after the restart, instead of running for ever.

    One of a live process on the same host (another worker of ``lineage serve --workers``) runs on.
    The people the ended one had written (a batch a transaction) are removed; the live one's stay.
    """
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    host = console.service._runner.rpartition(":")[0]
    with console.service.db.tx() as tx:
        for job, runner in (("lost", f"{host}:{ended.pid}"), ("sibling", console.service._runner)):
            tx.run("INSERT INTO console_breaches (id, owner, case_ref, holders, t1, t2, runner, started, status) "
                   "VALUES (:id, 'responder', 'INC-LOST', '[\"x\"]', 'a', 'b', :r, 0, 'running')",
                   {"id": job, "r": runner})  # fmt: skip
            tx.run("INSERT INTO console_breach_affected (breach_id, seq, subject, jurisdiction, age_band, category, "
                   "holder, reached_at, encrypted) VALUES (:id, 0, 's-1', 'CN', 'adult', 'c', 'h', 'a', 0)",
                   {"id": job})  # fmt: skip
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
    again = build_console(world.store, TAXONOMY, db, policies=world.policies)  # type: ignore[arg-type]
    try:
        lost, sibling = again.service.job("responder", "lost"), again.service.job("responder", "sibling")
        assert lost is not None and lost.status == "failed" and "restart" in (lost.error or "")
        assert sibling is not None and sibling.status == "running"
        assert (_affected(console, "lost"), _affected(console, "sibling")) == (0, 1)
    finally:
        again.service.close()
        db.close()


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Breach queries that wait for the event before answering (the real query then runs), to hold them running."""
    release = threading.Event()
    real = service_module.breach_impact

    def waiting(*args: Any, **kwargs: Any) -> BreachReport:
        release.wait(120)
        return real(*args, **kwargs)

    monkeypatch.setattr(service_module, "breach_impact", waiting)
    yield release
    release.set()


def test_breach_queries_are_capped_per_user_and_in_all(
    console: Console, client_for: Clients, held: threading.Event
) -> None:
    """Two running per responder and four in all; past either a one-line refusal (429); room again once they end."""
    for name in ("rita", "remy"):
        console.accounts.add(name, "responder", PASSWORD)
    clients = {name: client_for(name) for name in ("responder", "rita", "remy")}
    started = [_start(clients[n], f"INC-{i}", [HOSTILE_SYSTEM]) for i, n in enumerate(["responder"] * 2 + ["rita"] * 2)]
    assert [r.status_code for r in started] == [303] * MAX_JOBS
    mine = _start(clients["responder"], "INC-5", [HOSTILE_SYSTEM])
    assert mine.status_code == 429 and f"you already have {MAX_JOBS_PER_USER} queries running" in mine.text
    everyone = _start(clients["remy"], "INC-6", [HOSTILE_SYSTEM])
    assert everyone.status_code == 429 and f"{MAX_JOBS} queries are already running" in everyone.text
    _, token = console.accounts.new_token("remy")
    body = {"case_reference": "INC-7", "holders": [HOSTILE_SYSTEM], **WINDOW}
    api = clients["remy"].post("/api/breach", json=body, headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 429 and api.json() == {"error": f"breach: {MAX_JOBS} queries are already running; "
                                                               "try again in a few minutes"}  # fmt: skip
    held.set()
    ids = [r.headers["location"].rsplit("/", 1)[1] for r in started]
    owners = ["responder", "responder", "rita", "rita"]
    _wait("the held queries", lambda: all(_finished(console, o, i) for o, i in zip(owners, ids, strict=True)))
    assert _start(clients["remy"], "INC-8", [HOSTILE_SYSTEM]).status_code == 303


def test_a_users_cap_counts_the_jobs_running_in_every_worker(
    world: World, console: Console, held: threading.Event, tmp_path: Path
) -> None:
    """Two workers on one console database: a responder's third query is refused on either, whichever ran the two."""
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")  # a second worker's own connection
    other = build_console(world.store, TAXONOMY, db, policies=world.policies)  # type: ignore[arg-type]
    when = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    try:
        first = console.service.start_breach("responder", "INC-A", [HOSTILE_SYSTEM], *when, None)
        second = other.service.start_breach("responder", "INC-B", [HOSTILE_SYSTEM], *when, None)
        for service in (console.service, other.service):
            with pytest.raises(BreachBusy, match=f"you already have {MAX_JOBS_PER_USER} queries running"):
                service.start_breach("responder", "INC-C", [HOSTILE_SYSTEM], *when, None)
        assert [j.case_ref for j in console.service.jobs("responder")] == ["INC-B", "INC-A"]  # no refused one kept
        held.set()
        _wait("the held queries", lambda: _finished(console, "responder", first.id)
              and _finished(console, "responder", second.id))  # fmt: skip
        third = other.service.start_breach("responder", "INC-D", [HOSTILE_SYSTEM], *when, None)
        _wait("the last query", lambda: _finished(console, "responder", third.id))
    finally:
        held.set()
        other.service.close()
        db.close()


def test_no_report_stays_in_memory_once_kept(console: Console, client_for: Clients) -> None:
    """A finished query's report is written to the database and dropped: no BreachReport is left alive."""
    r = _start(client_for("responder"), "INC-MEM", [HOSTILE_SYSTEM])
    job_id = r.headers["location"].rsplit("/", 1)[1]
    _wait("the breach query", lambda: _finished(console, "responder", job_id))
    gc.collect()
    assert [o for o in gc.get_objects() if isinstance(o, BreachReport)] == []


# Written a batch a transaction: pages' audit entries go in between (SQLite has one write lock).


def test_a_pages_audit_entry_goes_in_between_the_batches_of_an_assessment(
    console: Console, client_for: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While an assessment's people are written, an audit entry (every page writes one) is not held to the end."""
    from lineage.console import service as service_impl
    from lineage.console.db import Tx

    monkeypatch.setattr(service_impl, "_AFFECTED_BATCH", 1)
    real, calls, recorded = Tx.run_many, [], threading.Event()

    def between(self: Tx, sql: str, rows: list[dict[str, Any]]) -> None:
        calls.append(sql)
        if len(calls) == 2:  # a batch written: a page's entry must get in before the next
            page = threading.Thread(target=lambda: (console.audit.record(
                "analyst", "analyst", "person.view", "127.0.0.1", subject="s-1", case_ref="C-1"), recorded.set()))
            page.start()
            page.join(20)  # the old single transaction held SQLite's write lock here until its 30 s timeout
        real(self, sql, rows)

    monkeypatch.setattr(Tx, "run_many", between)
    r = _start(client_for("responder"), "INC-BATCH", [HOSTILE_SYSTEM])
    job_id = r.headers["location"].rsplit("/", 1)[1]
    _wait("the breach query", lambda: _finished(console, "responder", job_id))
    job = console.service.job("responder", job_id)
    assert len(calls) >= 2 and recorded.is_set()
    assert job is not None and job.status == "done" and job.records == _affected(console, job_id) == len(calls)


def test_a_failed_assessment_leaves_none_of_its_people_written(
    console: Console, client_for: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refusing a later batch: the job is failed and the batches written before are removed."""
    from lineage.console import service as service_impl
    from lineage.console.db import Tx

    monkeypatch.setattr(service_impl, "_AFFECTED_BATCH", 1)
    real, calls = Tx.run_many, []

    def refusing(self: Tx, sql: str, rows: list[dict[str, Any]]) -> None:
        calls.append(sql)
        if len(calls) == 2:
            raise OSError("disk full")
        real(self, sql, rows)

    monkeypatch.setattr(Tx, "run_many", refusing)
    r = _start(client_for("responder"), "INC-FULL", [HOSTILE_SYSTEM])
    job_id = r.headers["location"].rsplit("/", 1)[1]
    _wait("the breach query", lambda: _finished(console, "responder", job_id))
    job = console.service.job("responder", job_id)
    assert job is not None and job.status == "failed" and _affected(console, job_id) == 0 and len(calls) == 2


def test_a_job_another_process_failed_between_its_batches_ends_failed_without_its_people(
    world: World, console: Console, client_for: Clients, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A console on a host of the same name that cannot see the runner's pid fails the job midway: it stays failed."""
    from lineage.console import service as service_impl
    from lineage.console.db import Tx

    monkeypatch.setattr(service_impl, "_AFFECTED_BATCH", 1)
    real, calls = Tx.run_many, []

    def between(self: Tx, sql: str, rows: list[dict[str, Any]]) -> None:
        calls.append(sql)
        if len(calls) == 2:  # a batch written: another process (another pid namespace) starts and fails the job
            with monkeypatch.context() as blind:
                blind.setattr(service_impl, "_process_alive", lambda pid: False)
                db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
                build_console(world.store, TAXONOMY, db, policies=world.policies).service.close()  # type: ignore[arg-type]
                db.close()
        real(self, sql, rows)

    monkeypatch.setattr(Tx, "run_many", between)
    r = _start(client_for("responder"), "INC-TAKEN", [HOSTILE_SYSTEM])
    job_id = r.headers["location"].rsplit("/", 1)[1]
    _wait("the breach query", lambda: _finished(console, "responder", job_id))
    job = console.service.job("responder", job_id)
    assert len(calls) >= 2 and job is not None and job.status == "failed" and _affected(console, job_id) == 0
