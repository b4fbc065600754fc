"""Access and erasure requests as cases, on the real app over a real store and a real SQLite console database."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from lineage.console.app import Console
from lineage.console.cases import LISTED
from tests.console.conftest import HOSTILE_SUBJECT, LINKED, csrf_of

Clients = Callable[[str | None], TestClient]


def _open(client: TestClient, ref: str, identifier: str, received: str, kind: str = "access",
          assignee: str = "analyst") -> int:  # fmt: skip
    form = {"csrf": csrf_of(client.get("/cases").text), "case_reference": ref, "kind": kind, "received": received,
            "identifier": identifier, "assignee": assignee}  # fmt: skip
    return client.post("/cases", data=form, follow_redirects=False).status_code


def test_cases_are_listed_by_due_date_with_overdue_ones_marked(console: Console, client_for: Clients) -> None:
    """A CN person is due in 15 working days (PIPL), one with no jurisdiction by the earliest rule; overdue marked."""
    analyst = client_for("analyst")
    today = datetime.now(UTC).date().isoformat()
    assert _open(analyst, "DSAR-NEW", LINKED[1], today) == 303
    assert _open(analyst, "DSAR-OLD", HOSTILE_SUBJECT, "2026-01-05", kind="erasure") == 303
    page = analyst.get("/cases").text
    assert page.index("DSAR-OLD") < page.index("DSAR-NEW")  # the earlier due date first
    assert page.count('class="case overdue"') == 1 and "overdue</b>" in page
    assert "15 working days" in page  # the rule is said on the page
    rows = analyst.get("/api/cases", headers=_bearer(console, "analyst")).json()
    assert [r["case_reference"] for r in rows] == ["DSAR-OLD", "DSAR-NEW"]
    old, new = rows
    assert old["regimes"] == ["CCPA", "GDPR", "PDPO-HK", "PIPL"] and old["due"] == "2026-01-26" and old["overdue"]
    assert new["regimes"] == ["PIPL"] and not new["overdue"] and new["status"] == "open"
    assert old["kind"] == "erasure" and new["assignee"] == "analyst" and old["status_by"] == "analyst"


def test_the_identifier_is_kept_only_as_the_audit_keyed_hash(console: Console, client_for: Clients) -> None:
    """No column of a case but the answer holds the identifier; the digest is the audit's HMAC of it."""
    analyst = client_for("analyst")
    assert _open(analyst, "DSAR-HASH", LINKED[1], "2026-11-30") == 303
    with console.cases.db.tx() as tx:
        row = tx.one("SELECT * FROM console_cases WHERE case_ref = 'DSAR-HASH'")
    assert row is not None
    answer = row.pop("answer")
    assert LINKED[1] not in json.dumps(row) and LINKED[0] not in json.dumps(row)
    assert row["subject_digest"] == console.audit.subject_digest(LINKED[1])
    assert LINKED[0] in json.loads(answer)["identifiers"]  # the answer is the document as answered


def test_status_and_assignee_change_with_who_and_when(console: Console, client_for: Clients) -> None:
    """Answering a case records the analyst and the time; the filters then find it by status and assignee."""
    analyst = client_for("analyst")
    console.accounts.add("bea", "analyst", "another-password-123")
    assert _open(analyst, "DSAR-ST", LINKED[1], "2026-11-30", assignee="") == 303
    csrf = csrf_of(analyst.get("/cases/DSAR-ST").text)
    r = analyst.post("/cases/DSAR-ST", data={"csrf": csrf, "status": "answered", "assignee": "bea"},
                     follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    case = console.cases.get("DSAR-ST")
    assert case is not None and case.status == "answered" and case.status_by == "analyst" and case.assignee == "bea"
    assert case.status_at[:10] == datetime.now(UTC).date().isoformat()
    assert "DSAR-ST" in analyst.get("/cases", params={"status": "answered", "assignee": "bea"}).text
    assert "DSAR-ST" not in analyst.get("/cases", params={"status": "open"}).text
    assert "DSAR-ST" not in analyst.get("/cases", params={"assignee": "analyst"}).text
    r = analyst.post("/cases/DSAR-ST", data={"csrf": csrf, "status": "closed", "assignee": "responder"})
    assert r.status_code == 400 and "assignee" in r.text  # only an analyst may be assigned


def test_the_answer_attached_downloads_again_and_is_audited(console: Console, client_for: Clients) -> None:
    """The kept answer comes back byte for byte, named by the case, and the download is in the audit trail."""
    analyst = client_for("analyst")
    assert _open(analyst, "DSAR-DL", LINKED[1], "2026-11-30") == 303
    r = analyst.get("/cases/DSAR-DL/answer.json")
    assert r.status_code == 200 and r.text == console.cases.answer("DSAR-DL")
    assert r.headers["content-disposition"] == 'attachment; filename="answer-DSAR-DL.json"'
    assert json.loads(r.text)["data_held"]
    actions = [e["action"] for e in console.audit.search(case_ref="DSAR-DL")]
    assert actions == ["person.download", "person.view"]  # newest first: the look-up, then the download


def test_bad_case_input_is_one_line_without_the_identifier(client_for: Clients) -> None:
    """A future received date, an unknown kind or a reused reference for another person: one line, no identifier."""
    analyst = client_for("analyst")
    assert _open(analyst, "DSAR-X", LINKED[1], "2026-11-30") == 303
    for ref, ident, received, kind, field in (
        ("DSAR-Y", LINKED[1], "2999-01-01", "access", "received"),
        ("DSAR-Y", LINKED[1], "2026-11-30", "rectify", "kind"),
        ("DSAR-X", HOSTILE_SUBJECT, "2026-11-30", "access", "case_reference"),
    ):
        form = {"csrf": csrf_of(analyst.get("/cases").text), "case_reference": ref, "kind": kind,
                "received": received, "identifier": ident}  # fmt: skip
        r = analyst.post("/cases", data=form)
        assert r.status_code == 400 and f"{field}" in r.text
        assert ident not in r.text.replace(f'value="{ident}"', "")  # never echoed in the message


def test_only_analysts_open_cases(console: Console, client_for: Clients) -> None:
    """Responders, auditors and admins are refused the case pages and their API; analysts are let in."""
    for role in ("responder", "auditor", "admin"):
        client = client_for(role)
        assert client.get("/cases").status_code == 403
        assert client.get("/api/cases", headers=_bearer(console, role)).status_code == 403
    assert client_for("analyst").get("/cases").status_code == 200


def test_the_api_opens_and_updates_a_case(console: Console, client_for: Clients) -> None:
    """The JSON twin opens a case with the answer attached and sets its status."""
    client, auth = client_for(None), _bearer(console, "analyst")
    r = client.post("/api/cases", headers=auth, json={"case_reference": "API-1", "kind": "erasure",
                                                      "received": "2026-11-30", "identifier": LINKED[0]})  # fmt: skip
    assert r.status_code == 201 and r.json()["regimes"] == ["PIPL"] and r.json()["due"] == "2026-12-21"
    r = client.post("/api/cases/API-1", headers=auth, json={"status": "closed"})
    assert r.status_code == 200 and r.json()["status"] == "closed"
    assert json.loads(client.get("/api/cases/API-1/answer.json", headers=auth).text)["data_held"]


def _bearer(console: Console, name: str) -> dict[str, str]:
    _, token = console.accounts.new_token(name)
    return {"Authorization": f"Bearer {token}"}


def test_a_case_reference_with_hash_or_colon_leads_back_to_its_own_case(console: Console, client_for: Clients) -> None:
    """After opening or updating ``REQ#8`` or ``REQ:9`` the analyst lands on that case, not ``REQ`` or ``REQ_9``."""
    analyst = client_for("analyst")
    for ref in ("REQ#8", "REQ:9", "REQ_9"):
        assert _open(analyst, ref, LINKED[1] if ref != "REQ_9" else HOSTILE_SUBJECT, "2026-11-30") == 303
    form = {"csrf": csrf_of(analyst.get("/cases").text), "case_reference": "REQ#8", "kind": "access",
            "received": "2026-11-30", "identifier": LINKED[1], "assignee": "analyst"}  # fmt: skip
    opened = analyst.post("/cases", data=form)
    assert opened.status_code == 200 and "REQ#8" in opened.text
    csrf = csrf_of(opened.text)
    updated = analyst.post("/cases/REQ%3A9", data={"csrf": csrf, "status": "answered", "assignee": "analyst"})
    assert updated.status_code == 200 and "REQ:9" in updated.text and "REQ_9" not in updated.text


def test_a_new_case_is_listed_after_a_thousand_closed_ones(console: Console, client_for: Clients) -> None:
    """With 1,001 closed cases due earlier, a case opened today still heads the list, and the page says what is cut."""
    old = [{"c": f"OLD-{i:04d}", "d": "2025-01-01"} for i in range(LISTED + 1)]
    with console.cases.db.tx() as tx:
        tx.run_many("INSERT INTO console_cases (case_ref, kind, subject_digest, received, regimes, due, status, "
                    "status_by, status_at, opened_by, opened_at, answer, answered_at) VALUES (:c, 'access', 'x', :d, "
                    "'GDPR', :d, 'closed', 'analyst', :d, 'analyst', :d, '{}', :d)", old)  # fmt: skip
    analyst = client_for("analyst")
    assert _open(analyst, "DSAR-TODAY", LINKED[1], datetime.now(UTC).date().isoformat()) == 303
    page = analyst.get("/cases").text
    assert "DSAR-TODAY" in page and f"Showing {LISTED} of {LISTED + 2} cases" in page
    rows = analyst.get("/api/cases", headers=_bearer(console, "analyst")).json()
    assert rows[0]["case_reference"] == "DSAR-TODAY" and len(rows) == LISTED


def test_an_audit_search_by_identifier_finds_the_downloads_of_that_persons_case_answers(
    console: Console, client_for: Clients
) -> None:
    """Who saw whom: searching the identifier lists the case's look-up and each download of its answer, no other's."""
    analyst = client_for("analyst")
    assert _open(analyst, "DSAR-WHO", LINKED[1], "2026-11-30") == 303
    assert _open(analyst, "DSAR-ELSE", HOSTILE_SUBJECT, "2026-11-30") == 303
    for ref in ("DSAR-WHO", "DSAR-ELSE"):
        assert analyst.get(f"/cases/{ref}/answer.json").status_code == 200
    found = [(e["action"], e["case_ref"]) for e in console.audit.search(subject=LINKED[1])]
    assert found == [("person.download", "DSAR-WHO"), ("person.view", "DSAR-WHO")]
    assert console.audit.count(subject=LINKED[1]) == 2
    auditor = client_for("auditor")
    page = auditor.post("/audit", data={"csrf": csrf_of(auditor.get("/audit").text), "subject": LINKED[1]}).text
    assert "of 2 matching" in page


def test_a_reference_of_another_persons_case_is_refused_before_any_look_up(
    console: Console, client_for: Clients
) -> None:
    """Reusing a case reference for someone else is refused with no audit entry claiming an answer was attached."""
    analyst = client_for("analyst")
    assert _open(analyst, "DSAR-MINE", LINKED[1], "2026-11-30") == 303
    assert _open(analyst, "DSAR-MINE", HOSTILE_SUBJECT, "2026-11-30") == 400
    assert console.audit.search(subject=HOSTILE_SUBJECT) == []
