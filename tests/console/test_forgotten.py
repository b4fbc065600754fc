"""The console's person page and its JSON twin for a person forgotten with ``lineage forget``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from lineage import default_taxonomy
from lineage.answers.forget import forget_person
from lineage.console.app import create_app
from lineage.console.db import ConsoleDB
from lineage.console.server import build_console
from lineage.contract.records import make_record
from lineage.ingest.holdings import HoldingsMaintainer
from tests.console.conftest import PASSWORD, csrf_of, sign_in
from tests.fixtures import store_of

TAXONOMY = default_taxonomy()
AT = datetime(2026, 5, 1, tzinfo=UTC)


def _collected(subject: str, **fields: object) -> dict[str, object]:
    return make_record("COLLECTED", system="app", system_region="CN", subject_id=subject, subject_jurisdiction="CN",
                       categories=["user.contact.email"], purpose="essential.service", legal_basis="CONTRACT",
                       source="direct", occurred_at=AT, **fields)  # fmt: skip


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
    trail = console.audit.search()
    assert [e["action"] for e in trail] == ["store.forget"] and trail[0]["subject"] is None
    assert trail[0]["detail"] == "1 identifier(s) given"  # no identifier in the detail either
    console.service.close()
    db.close()
