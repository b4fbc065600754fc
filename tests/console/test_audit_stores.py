"""The audit trail on real servers: its Kafka copy (identifiers hashed) and a PostgreSQL console database."""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from lineage.console.accounts import Accounts
from lineage.console.audit import Audit
from lineage.console.cases import Cases
from lineage.console.db import ConsoleDB, ConsoleDBError, hashed_subject
from lineage.console.server import audit_sink
from lineage.console.service import Service
from lineage.console.sessions import Sessions
from lineage.settings import Settings
from lineage.transport.kafka import read_messages
from tests.console.conftest import HOSTILE_SYSTEM, LINKED, TAXONOMY, World
from tests.services import Postgres


@pytest.mark.integration
def test_each_entry_is_produced_to_kafka_without_the_identifier(client_settings: Settings, tmp_path: Path) -> None:
    """Every entry reaches the audit topic in order, on each client; the identifier travels only as its keyed hash."""
    topic = f"test.audit.{uuid.uuid4().hex[:8]}"
    db = ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}")
    audit = Audit(db, audit_sink(client_settings, topic), topic)
    audit.record("ana", "analyst", "signin.ok", "127.0.0.1")
    audit.record("ana", "analyst", "person.view", "127.0.0.1", subject="user-secret-77", case_ref="DSAR-1")
    audit.close()
    shipped = [json.loads(m.value) for m in read_messages(client_settings, topic, idle_timeout_s=5, max_messages=2)]
    assert [m["action"] for m in shipped] == ["signin.ok", "person.view"]
    assert shipped[1]["subject"] == audit.subject_digest("user-secret-77")
    assert "user-secret-77" not in json.dumps(shipped)
    assert shipped[1]["case_ref"] == "DSAR-1" and shipped[1]["seq"] == 2
    assert audit.search(subject="user-secret-77")[0]["subject"] == "user-secret-77"  # the table keeps it for auditors
    db.close()


@pytest.mark.integration
def test_postgres_holds_accounts_sessions_and_an_append_only_audit(postgres: Postgres) -> None:
    """On PostgreSQL too: sign-in, sessions, and triggers refusing UPDATE, DELETE and TRUNCATE of the audit."""
    db = ConsoleDB(postgres.sqlalchemy_uri(), postgres.password)  # the password apart from the URI
    ConsoleDB(postgres.sqlalchemy_uri(), postgres.password).close()  # opening twice: the schema is idempotent
    accounts, sessions, audit = Accounts(db), Sessions(db), Audit(db)
    name = f"pg{uuid.uuid4().hex[:6]}"
    accounts.add(name, "auditor", "a-long-enough-password")
    assert accounts.sign_in(name, "a-long-enough-password").role == "auditor"
    session_id, session = sessions.start(name, "10.0.0.1")
    assert sessions.get(session_id) == session
    seq = audit.record(name, "auditor", "signin.ok", "10.0.0.1")
    for sql in ("UPDATE console_audit SET actor = 'x'", "DELETE FROM console_audit", "TRUNCATE console_audit"):
        with pytest.raises(ConsoleDBError, match="append-only"), db.tx() as tx:
            tx.run(sql)
    assert audit.search(actor=name)[0]["seq"] == seq
    assert "password" not in db.described or "***" in db.described
    db.close()


@pytest.mark.integration
def test_postgres_keeps_cases_and_breach_assessments(postgres: Postgres, world: World) -> None:
    """On PostgreSQL too: a case with its answer and due date, and a breach assessment readable by a new server."""
    db = ConsoleDB(postgres.sqlalchemy_uri(), postgres.password)
    ref = f"PG-{uuid.uuid4().hex[:6]}"
    cases = Cases(db, Audit(db).subject_digest)
    doc = ("Access", {"identifiers": [LINKED[0]]}, {})
    case = cases.attach(case_ref=ref, kind="access", received=date(2026, 3, 10), identifier=LINKED[0],
                        regimes=["PDPO-HK"], answer=doc, by="ana", assignee=None)  # fmt: skip
    assert case.due == date(2026, 4, 19) and case.answer_chars > 0
    assert cases.update(ref, "bea", status="answered").status_by == "bea"
    assert ref in [c.case_ref for c in cases.listing(status="answered")] and cases.count(status="answered") >= 1
    audit = Audit(db)
    audit.record("ana", "analyst", "person.download", "127.0.0.1", case_ref=ref)
    assert ref in [e["case_ref"] for e in audit.search(subject=LINKED[0], action="person.download")]
    first = Service(world.store, TAXONOMY, db=db)
    job = first.start_breach("rita", ref, [HOSTILE_SYSTEM], datetime(2026, 1, 1, tzinfo=UTC),
                             datetime(2026, 12, 1, tzinfo=UTC), None)  # fmt: skip
    first.close()  # waits for the query
    second = Service(world.store, TAXONOMY, db=db)
    kept = second.job("rita", job.id)
    assert kept is not None and kept.status == "done" and kept.plan and kept.records > 0
    assert len("".join(second.affected_csv(job.id)).splitlines()) == kept.records + 1
    second.close()
    db.close()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_a_nul_character_is_one_line_on_either_database(postgres: Postgres, tmp_path: Path, backend: str) -> None:
    """A NUL in a name or identifier is refused by name on both (PostgreSQL's driver raised a bare ValueError)."""
    from lineage.errors import InvalidEventError

    db = (ConsoleDB(postgres.sqlalchemy_uri(), postgres.password) if backend == "postgresql"
          else ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}"))  # fmt: skip
    with pytest.raises(InvalidEventError) as refused:
        Accounts(db).sign_in("ana\x00", "a-long-enough-password")
    assert str(refused.value) == "name: must not hold a NUL character"
    with pytest.raises(InvalidEventError) as refused:
        Audit(db).record("ana", "analyst", "person.view", "127.0.0.1", subject="user\x00-42", case_ref="NUL-1")
    assert str(refused.value) == "subject: must not hold a NUL character" and "user" not in str(refused.value)
    db.close()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_the_trail_allows_only_an_identifier_replaced_by_its_keyed_hash(
    postgres: Postgres, tmp_path: Path, backend: str
) -> None:
    """Plain UPDATEs and DELETE stay refused; only a subject in clear to its marked keyed hash passes, once."""
    db = (ConsoleDB(postgres.sqlalchemy_uri(), postgres.password) if backend == "postgresql"
          else ConsoleDB(f"sqlite:///{tmp_path / 'console.db'}"))  # fmt: skip
    audit = Audit(db)
    person = f"user-{uuid.uuid4().hex[:8]}"
    seq = audit.record("ana", "analyst", "person.view", "127.0.0.1", subject=person, case_ref="C-1")
    nobody = audit.record("ana", "analyst", "signin.ok", "127.0.0.1")
    hashed = audit.redacted(person)
    params = {"seq": seq, "hashed": hashed, "short": hashed[:-1], "upper": hashed.upper(), "other": "someone-else"}
    for sql in (
        "UPDATE console_audit SET actor = 'x' WHERE seq = :seq",
        "UPDATE console_audit SET subject = :other WHERE seq = :seq",  # not a hash
        "UPDATE console_audit SET subject = :short WHERE seq = :seq",  # one digit short
        "UPDATE console_audit SET subject = :upper WHERE seq = :seq",  # not the mark and lower-case hex
        "UPDATE console_audit SET subject = :hashed, detail = 'x' WHERE seq = :seq",  # another column with it
        "DELETE FROM console_audit WHERE seq = :seq",
    ):
        with pytest.raises(ConsoleDBError, match="append-only"), db.tx() as tx:
            tx.run(sql, params)
    with pytest.raises(ConsoleDBError, match="append-only"), db.tx() as tx:  # an entry naming nobody stays so
        tx.run("UPDATE console_audit SET subject = :hashed WHERE seq = :seq", {**params, "seq": nobody})
    with db.tx() as tx:
        assert tx.run("UPDATE console_audit SET subject = :hashed WHERE seq = :seq", params) == 1
    with pytest.raises(ConsoleDBError, match="append-only"), db.tx() as tx:  # hashed once, then it is kept
        tx.run("UPDATE console_audit SET subject = :to WHERE seq = :seq", {"to": hashed_subject("0" * 64), "seq": seq})
    [entry] = audit.search(subject=person)
    assert entry["seq"] == seq and entry["subject"] == hashed and entry["detail"] == "" and entry["actor"] == "ana"
    db.close()


def test_a_database_made_before_the_redaction_gets_the_new_trigger(tmp_path: Path) -> None:
    """A console.db whose old trigger refused every UPDATE is opened with the one that allows the redaction."""
    path = tmp_path / "console.db"
    ConsoleDB(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as old:  # the trigger as the console made it before
        old.execute("DROP TRIGGER console_audit_only_redaction")
        old.execute("CREATE TRIGGER console_audit_no_update BEFORE UPDATE ON console_audit "
                    "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END")  # fmt: skip
    old.close()
    db = ConsoleDB(f"sqlite:///{path}")
    with db.tx() as tx:
        assert [r["name"] for r in tx.rows("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")] == [
            "console_audit_no_delete", "console_audit_only_redaction"]  # fmt: skip
    audit = Audit(db)
    seq = audit.record("ana", "analyst", "person.view", "127.0.0.1", subject="user-5", case_ref="C-1")
    with db.tx() as tx:
        assert tx.run("UPDATE console_audit SET subject = :h WHERE seq = :seq",
                      {"h": audit.redacted("user-5"), "seq": seq}) == 1  # fmt: skip
    db.close()
