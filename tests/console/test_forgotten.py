"""The console's person page and its JSON twin for a person forgotten with ``lineage forget``."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lineage import default_taxonomy
from lineage.answers.forget import forget_person
from lineage.console import kept
from lineage.console.app import Console, create_app
from lineage.console.db import ConsoleDB
from lineage.console.server import build_console
from lineage.contract.records import Record
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.store import Store
from tests.console.conftest import PASSWORD, csrf_of, sign_in
from tests.fixtures import LAGGING_SUBJECT, email_collected, lagging_store, store_of
from tests.services import Postgres

TAXONOMY = default_taxonomy()
AT = datetime(2026, 5, 1, tzinfo=UTC)


def _collected(subject: str, **fields: object) -> Record:
    return email_collected(subject, AT, **fields)


def test_the_person_page_of_a_forgotten_person_says_erased_and_nothing_more(tmp_path: Path) -> None:
    """After forget, the person page and /api/person for a linked id give the date and case, no holding."""
    store = store_of([_collected("acct-1", linked_subject_ids=["phone-1"]), _collected("acct-2")], tmp_path / "s")
    db = ConsoleDB(f"sqlite:///{tmp_path / 's' / 'console.db'}")
    console = build_console(store, TAXONOMY, db)
    console.accounts.add("analyst", "analyst", PASSWORD)
    forget_person(store, ["acct-1"], case_ref="ER-5", digest=console.audit.subject_digest, kafka_bound="-",
                  refresh_holdings=HoldingsMaintainer(store.location).refresh)
    analyst = sign_in(TestClient(create_app(console), base_url="http://127.0.0.1"), "analyst")
    page = analyst.post("/person", data={"csrf": csrf_of(analyst.get("/").text), "case_reference": "C-1",
                                         "identifier": "phone-1"})  # fmt: skip
    assert page.status_code == 200 and "under case ER-5." in page.text
    assert "user.contact.email" not in page.text and "No data held" not in page.text
    other = analyst.post("/person", data={"csrf": csrf_of(analyst.get("/").text), "case_reference": "C-1",
                                          "identifier": "acct-2"})  # fmt: skip
    assert "user.contact.email" in other.text and "ER-5" not in other.text
    _, token = console.accounts.new_token("analyst")
    bearer = {"Authorization": f"Bearer {token}"}
    api = TestClient(create_app(console), base_url="http://127.0.0.1").post(
        "/api/person", json={"identifier": "acct-1", "case_reference": "C-2"}, headers=bearer
    )
    assert api.status_code == 200 and "under case ER-5." in api.text and "user.contact" not in api.text
    console.service.close()
    db.close()


def test_an_admin_forgets_a_person_through_the_api_and_the_trail_never_names_them(tmp_path: Path) -> None:
    """POST /api/forget (admin): the certificate's counts back, the person page says erased, no entry names them."""
    store = store_of([_collected("acct-9", linked_subject_ids=["phone-9"]), _collected("acct-3")], tmp_path / "s")
    db = ConsoleDB(f"sqlite:///{tmp_path / 's' / 'console.db'}")
    console = build_console(store, TAXONOMY, db, topics=("ev", "ev.dlq"))
    client = TestClient(create_app(console), base_url="http://127.0.0.1")
    console.accounts.add("admin", "admin", PASSWORD)
    _, admin = console.accounts.new_token("admin")
    r = client.post("/api/forget", json={"case_reference": "ER-9", "identifiers": ["phone-9"]},
                    headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["case_ref"] == "ER-9" and body["status"] == "done" and body["events_rows"] == 1
    assert "ev.dlq" in body["kafka_bound"] and "acct-9" not in r.text and "phone-9" not in r.text
    assert console.service.person("acct-9")[1]["erased"].endswith("under case ER-9.")
    assert body["console"]["audit_entries"] == 0 and body["console"]["reclaimed"].startswith("VACUUM")
    trail = console.audit.search()
    assert [e["action"] for e in trail] == ["audit.redacted", "store.forget"]
    assert all(e["subject"] is None and e["case_ref"] == "ER-9" for e in trail)
    assert trail[1]["detail"] == "1 identifier(s) given"  # no identifier in the detail either
    assert trail[0]["detail"] == ("identifiers replaced by their keyed hash: 0 audit entries, 0 breach rows; "
                                  "0 case answers erased")  # fmt: skip
    console.service.close()
    db.close()


def test_a_forget_through_the_api_computes_the_registers_ahead_once_the_console_database_is_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST /api/forget on a served console: registers computed ahead after the redaction's drop, and kept."""
    store = store_of([_collected("acct-7"), _collected("acct-8")], tmp_path / "s")
    db = ConsoleDB(f"sqlite:///{tmp_path / 's' / 'console.db'}")
    console = build_console(store, TAXONOMY, db, topics=("ev", "ev.dlq"))
    console.accounts.add("admin", "admin", PASSWORD)
    _, admin = console.accounts.new_token("admin")
    steps: list[str] = []
    real_drop, real_warm = kept.drop, console.service.warm_registers

    def drop(*args: Any, **kwargs: Any) -> None:
        steps.append("drop")
        real_drop(*args, **kwargs)

    def warm() -> None:
        steps.append("warm")
        real_warm()

    monkeypatch.setattr(kept, "drop", drop)
    monkeypatch.setattr(console.service, "warm_registers", warm)
    try:
        with TestClient(create_app(console, on_start=console.service.warm_registers),
                        base_url="http://127.0.0.1") as client:  # fmt: skip
            steps.clear()  # the start's warm-up
            r = client.post("/api/forget", json={"case_reference": "ER-7", "identifiers": ["acct-7"]},
                            headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
            assert r.status_code == 200, r.text
            assert "drop" in steps and steps[-1] == "warm", steps  # after the last drop (the redaction's)
            renewing = console.service._renewing  # noqa: SLF001 - waited on as a condition
            assert renewing is not None
            renewing.result(timeout=300)
            assert kept.load(db, console.service._registers_key) is not None  # noqa: SLF001
    finally:
        console.service.close()
        db.close()


def _console_files(db: ConsoleDB, folder: Path, postgres: Postgres) -> dict[str, bytes]:
    """The bytes of the console database's files as on disk.

    SQLite's file, log and shared memory; or every relation file of PostgreSQL's database once a
    checkpoint has written its buffers (its WAL aside: it keeps old rows until recycled).
    """
    if db.kind == "sqlite":
        return {p.name: p.read_bytes() for p in sorted(folder.glob("console.db*"))}
    with db.tx() as tx:
        tx.run("CHECKPOINT")
        found = tx.one("SELECT oid FROM pg_database WHERE datname = current_database()")
    assert found is not None
    return {str(p): p.read_bytes() for p in sorted((postgres.data / "base" / str(found["oid"])).iterdir())
            if p.is_file()}  # fmt: skip


def _wait_done(console: Console, owner: str, job_id: str) -> None:
    deadline = time.monotonic() + 120
    while (job := console.service.job(owner, job_id)) is None or job.status == "running":
        assert time.monotonic() < deadline, "the breach assessment did not finish in 120 s"
        time.sleep(0.2)
    assert job.status == "done", job.error


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_after_forget_no_byte_of_the_console_database_names_the_person(
    tmp_path: Path, postgres: Postgres, backend: str
) -> None:
    """Look-ups, an audit search, a case answer and a breach list name the person; after forget no console file does."""
    tag = uuid.uuid4().hex[:10]  # PostgreSQL's database is the session's: these identifiers are this run's alone
    person, linked, other = f"acct-{tag}", f"phone-{tag}", f"acct-other-{uuid.uuid4().hex[:10]}"
    store = store_of([_collected(person, linked_subject_ids=[linked]), _collected(other)], tmp_path / "s")
    db = (ConsoleDB(postgres.sqlalchemy_uri(), postgres.password) if backend == "postgresql"
          else ConsoleDB(f"sqlite:///{tmp_path / 's' / 'console.db'}"))  # fmt: skip
    console = build_console(store, TAXONOMY, db, topics=("ev", "ev.dlq"))
    run = uuid.uuid4().hex[:6]  # accounts and cases of this run (not the person's tag: they are kept)
    names = {role: f"{role}{run}" for role in ("analyst", "responder", "auditor", "admin")}
    for role, name in names.items():
        console.accounts.add(name, role, PASSWORD)
    bearer = {r: {"Authorization": f"Bearer {console.accounts.new_token(names[r])[1]}"} for r in ("analyst", "auditor")}
    client = TestClient(create_app(console), base_url="http://127.0.0.1")
    for who in (linked, other):
        r = client.post("/api/person", json={"identifier": who, "case_reference": "C-1"}, headers=bearer["analyst"])
        assert r.status_code == 200, r.text
    r = client.post("/api/cases", json={"case_reference": f"DSAR-{run}", "kind": "access", "identifier": person},
                    headers=bearer["analyst"])  # fmt: skip
    assert r.status_code == 201, r.text
    assert client.post("/api/audit", json={"subject": person}, headers=bearer["auditor"]).status_code == 200
    job = console.service.start_breach(names["responder"], "BR-1", ["app"], AT - timedelta(days=1),
                                       AT + timedelta(days=1), None)  # fmt: skip
    _wait_done(console, names["responder"], job.id)
    assert any(tag.encode() in data for data in _console_files(db, tmp_path / "s", postgres).values())  # seen
    _, admin = console.accounts.new_token(names["admin"])
    r = client.post("/api/forget", json={"case_reference": f"ER-{run}", "identifiers": [person]},
                    headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
    assert r.status_code == 200, r.text
    redacted = r.json()["console"]
    assert redacted["audit_entries"] == 3 and redacted["breach_rows"] == 1 and redacted["case_answers"] == 1
    assert redacted["reclaimed"].startswith("VACUUM")
    for name, data in _console_files(db, tmp_path / "s", postgres).items():
        assert tag.encode() not in data, f"{name} still holds an identifier of the forgotten person"
    assert other in "".join(console.service.affected_csv(job.id))  # the others stay in clear
    assert console.audit.search(subject=other)[0]["subject"] == other
    looked_up = console.audit.search(subject=linked, action="person.view")  # still found by its keyed hash
    assert [e["subject"] for e in looked_up] == [console.audit.redacted(linked)]
    assert console.cases.answer(f"DSAR-{run}") == json.dumps({"note": f"erased under case ER-{run}"})
    console.service.close()
    db.close()


def test_a_console_forget_reads_on_the_worker_s_duckdb_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's store has its share of threads (``serve --workers``); the forget's own reads keep that share.

    The store's holdings lag its events, so the forget's refresh of them reads the events too.
    """
    store, lacking = lagging_store(tmp_path / "s")
    assert lacking
    store.threads = 1  # what ``serve`` sets in each of 2 workers on 2 cores
    db = ConsoleDB(f"sqlite:///{tmp_path / 's' / 'console.db'}")
    console = build_console(store, default_taxonomy(), db, topics=("ev", "ev.dlq"))
    opened: list[int | None] = []
    real = Store._open

    def spy(self: Store, *args: Any, **kwargs: Any) -> Any:
        opened.append(self.threads)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Store, "_open", spy)
    try:
        console.service.person(LAGGING_SUBJECT)
        console.service.forget([LAGGING_SUBJECT], "ER-1")
    finally:
        console.service.close()
        db.close()
    assert len(opened) >= 2 and opened == [1] * len(opened), f"threads of each connection opened: {opened}"


def _breach_console(tmp_path: Path) -> tuple[Store, ConsoleDB, Console, TestClient, dict[str, str], dict[str, str]]:
    """acct-9 and acct-3 collected by app; a console with an admin's and a responder's bearer headers."""
    store = store_of([_collected("acct-9"), _collected("acct-3")], tmp_path / "s")
    db = ConsoleDB(f"sqlite:///{tmp_path / 's' / 'console.db'}")
    console = build_console(store, TAXONOMY, db, topics=("ev", "ev.dlq"))
    for name, role in (("admin", "admin"), ("rita", "responder")):
        console.accounts.add(name, role, PASSWORD)
    admin, rita = ({"Authorization": f"Bearer {console.accounts.new_token(n)[1]}"} for n in ("admin", "rita"))
    return store, db, console, TestClient(create_app(console), base_url="http://127.0.0.1"), admin, rita


def _breach_job(client: TestClient, rita: dict[str, str]) -> dict[str, Any]:
    """A whole-history breach job at app, waited for; its last status."""
    r = client.post("/api/breach", json={"case_reference": "INC-1", "holders": ["app"],
                                         "start": "2000-01-01T00:00Z", "end": "2100-01-01T00:00Z"}, headers=rita)
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 120
    while (ended := client.get(f"/api/breach/{r.json()['job']}", headers=rita).json())["status"] == "running":
        assert time.monotonic() < deadline, "the breach job did not end"
        time.sleep(0.1)
    return dict(ended)


def _affected(db: ConsoleDB, job: str) -> list[str]:
    with db.tx() as tx:
        return [row["subject"] for row in tx.rows(
            "SELECT subject FROM console_breach_affected WHERE breach_id = :id", {"id": job})]


@pytest.mark.parametrize("when", ["before its people are written", "between two batches of them", "twice"])
def test_a_breach_read_before_a_forget_and_kept_after_its_redaction_names_the_person_only_by_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """A breach job's people, read before a person's forget and written after the console's redaction: hashed too.

    ``twice``: forgotten again under a second case (a retry, whose certificate says nothing was held
    any more) before the people are written: the redaction hashed them whatever the status, so does the job.
    No byte of the console database's files names them after (the job reclaims what it replaced).
    """
    import threading

    from lineage.console import service as service_impl
    from lineage.console.db import HASHED, Tx

    store, db, console, client, admin, rita = _breach_console(tmp_path)
    redacted: list[int] = []

    def forget(case: str = "ER-9") -> None:
        r = client.post("/api/forget", json={"case_reference": case, "identifiers": ["acct-9"]}, headers=admin)
        assert r.status_code == 200
        redacted.append(r.json()["console"]["breach_rows"])

    if when == "between two batches of them":
        monkeypatch.setattr(service_impl, "_AFFECTED_BATCH", 1)
        real_many, batches = Tx.run_many, []

        def forget_between(self: Tx, sql: str, rows: list[dict[str, Any]]) -> None:
            batches.append(sql)
            if len(batches) == 2:  # the first batch committed, the second not begun
                done = threading.Thread(target=forget)
                done.start()
                done.join(120)
            real_many(self, sql, rows)

        monkeypatch.setattr(Tx, "run_many", forget_between)
    else:
        real_keep = console.service._keep

        def forget_first(*args: Any, **kwargs: Any) -> None:  # the answer made, its people not yet written
            forget()
            if when == "twice":
                forget("ER-10")
            real_keep(*args, **kwargs)

        monkeypatch.setattr(console.service, "_keep", forget_first)
    ended = _breach_job(client, rita)
    assert ended["status"] == "done", ended.get("error")
    subjects = _affected(db, ended["job"])
    assert redacted and "acct-3" in subjects and "acct-9" not in subjects
    assert len(subjects) == 2 and all(s.startswith(HASHED) for s in subjects if s != "acct-3")
    assert {f.name: f.read_bytes().count(b"acct-9") for f in (tmp_path / "s").glob("console.db*")} == {
        f.name: 0 for f in (tmp_path / "s").glob("console.db*")}
    console.service.close()
    db.close()


def test_a_person_collected_again_after_their_forget_is_named_in_a_later_breach(tmp_path: Path) -> None:
    """Forgotten, then collected again a month later: a breach after that lists them by name, as the store does."""
    from lineage.codec import Codec
    from lineage.ingest.pipeline import Ingestor

    store, db, console, client, admin, rita = _breach_console(tmp_path)
    r = client.post("/api/forget", json={"case_reference": "ER-9", "identifiers": ["acct-9"]}, headers=admin)
    assert r.status_code == 200
    again = Ingestor(tmp_path / "s", "events", taxonomy=TAXONOMY)
    later = Codec().encode_record(email_collected("acct-9", AT + timedelta(days=30)))
    assert again.add(0, 100, later, None, ()) is None
    again.flush()
    HoldingsMaintainer(store.location).refresh()
    ended = _breach_job(client, rita)
    assert ended["status"] == "done" and sorted(_affected(db, ended["job"])) == ["acct-3", "acct-9"]
    console.service.close()
    db.close()


def test_a_case_answer_read_before_a_forget_and_attached_after_its_redaction_is_erased(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A case opened with an answer read just before the person's forget: the note, not the answer, is kept."""
    store = store_of([_collected("acct-9"), _collected("acct-3")], tmp_path / "s")
    db = ConsoleDB(f"sqlite:///{tmp_path / 's' / 'console.db'}")
    console = build_console(store, TAXONOMY, db, topics=("ev", "ev.dlq"))
    for name in ("admin", "analyst"):
        console.accounts.add(name, name, PASSWORD)
    admin, analyst = ({"Authorization": f"Bearer {console.accounts.new_token(n)[1]}"} for n in ("admin", "analyst"))
    client = TestClient(create_app(console), base_url="http://127.0.0.1")
    real_person = console.service.person

    def read_then_forgotten(*args: Any, **kwargs: Any) -> Any:
        answer = real_person(*args, **kwargs)
        r = client.post("/api/forget", json={"case_reference": "ER-9", "identifiers": ["acct-9"]}, headers=admin)
        assert r.status_code == 200 and r.json()["console"]["case_answers"] == 0  # no case yet to erase
        return answer

    monkeypatch.setattr(console.service, "person", read_then_forgotten)
    r = client.post("/api/cases", json={"case_reference": "DSAR-9", "kind": "access", "received": "2026-11-30",
                                        "identifier": "acct-9"}, headers=analyst)  # fmt: skip
    assert r.status_code in (200, 201), r.text
    assert console.cases.answer("DSAR-9") == json.dumps({"note": "erased under case ER-9"})
    console.service.close()
    db.close()
