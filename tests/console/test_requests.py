"""What a request may carry and what the audit keeps: bounded bodies, credentials first, field limits, refusals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lineage.console.app import MAX_BODY, Console, create_app
from lineage.errors import InvalidEventError
from tests.console.conftest import LINKED, csrf_of

Clients = Callable[[str | None], TestClient]
CHUNK = 64 * 1024


def _asgi(console: Console, path: str, headers: dict[str, str], chunks: int) -> tuple[int, int, bytes]:
    """Send a POST of ``chunks`` 64 KiB pieces straight to the app as a server would: (status, pieces read, body)."""
    app = create_app(console)
    pulled, sent = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled < chunks:
            pulled += 1
            return {"type": "http.request", "body": b"x" * CHUNK, "more_body": pulled < chunks}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}  # fmt: skip
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, pulled, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_a_body_without_credentials_is_refused_unread(console: Console) -> None:
    """No token (API) or no session (pages): refused before a single piece of the body is read."""
    json_body = {"content-type": "application/json"}
    assert _asgi(console, "/api/person", json_body, 20)[:2] == (401, 0)
    assert _asgi(console, "/api/person", {**json_body, "authorization": "Bearer lin_forged"}, 20)[:2] == (401, 0)
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert _asgi(console, "/person", form, 20)[:2] == (303, 0)


def test_a_body_past_the_limit_is_refused_while_it_streams(console: Console) -> None:
    """A signed-in caller's chunked body stops being read just past the limit: 413 with one line."""
    _, token = console.accounts.new_token("analyst")
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    status, pulled, body = _asgi(console, "/api/person", headers, 40)  # 2.5 MiB, no Content-Length
    assert status == 413 and pulled <= MAX_BODY // CHUNK + 1
    assert json.loads(body) == {"error": f"request body: larger than the {MAX_BODY} bytes allowed"}


def test_a_content_length_past_the_limit_is_refused_unread(console: Console) -> None:
    """A declared 1 GB body is refused on its Content-Length alone, before any of it is read."""
    _, token = console.accounts.new_token("analyst")
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}", "content-length": str(2**30)}
    assert _asgi(console, "/api/person", headers, 20)[:2] == (413, 0)


def test_refusals_and_audit_views_are_recorded(console: Console, client_for: Clients) -> None:
    """A 403 for a role, a CSRF failure and an audit page view each leave an entry, never the data sent."""
    analyst, auditor = client_for("analyst"), client_for("auditor")
    assert analyst.get("/audit").status_code == 403
    r = analyst.post("/person", data={"csrf": "forged", "case_reference": "C-1", "identifier": LINKED[0]})
    assert r.status_code == 403
    assert auditor.get("/audit").status_code == 200
    found = {e["action"]: e for e in console.audit.search()}
    assert (found["access.refused"]["actor"], found["access.refused"]["detail"]) == ("analyst", "GET /audit")
    assert (found["csrf.refused"]["actor"], found["csrf.refused"]["detail"]) == ("analyst", "POST /person")
    assert found["audit.view"]["actor"] == "auditor" and "person.view" not in found
    assert LINKED[0] not in json.dumps(console.audit.search(), default=str)


def test_an_identifier_past_its_limit_is_refused_and_never_kept(console: Console, client_for: Clients) -> None:
    """A 600-character identifier: one line naming the field (not the value), 400, and no audit entry holds it."""
    analyst = client_for("analyst")
    huge = "person-" + "9" * 593
    r = analyst.post("/person", data={"csrf": csrf_of(analyst.get("/").text), "case_reference": "C-1",
                                      "identifier": huge})  # fmt: skip
    assert r.status_code == 400 and "identifier: must be at most 512 characters" in r.text and "99999" not in r.text
    _, token = console.accounts.new_token("auditor")
    s = client_for(None).post("/api/audit", json={"subject": huge}, headers={"Authorization": f"Bearer {token}"})
    assert (s.status_code, s.json()) == (400, {"error": "subject: must be at most 512 characters"})
    assert huge not in json.dumps(console.audit.search(), default=str)


def test_a_case_reference_past_its_limit_is_refused(console: Console, client_for: Clients) -> None:
    """A case reference longer than 64 characters is refused by name, in look-ups and audit searches alike."""
    auditor = client_for("auditor")
    r = auditor.post("/audit", data={"csrf": csrf_of(auditor.get("/").text), "case_reference": "C" * 65})
    assert r.status_code == 400 and "case_reference=" in r.text and "must be at most 64 characters" in r.text
    assert not console.audit.search(action="audit.search")


def test_the_audit_refuses_over_long_fields_itself(console: Console) -> None:
    """The append-only table is the last guard: an entry with an over-long identifier is refused, not cut."""
    with pytest.raises(InvalidEventError, match=r"^subject: must be at most 512 characters$"):
        console.audit.record("a", "analyst", "person.view", "127.0.0.1", subject="x" * 5_000_000, case_ref="C-1")
    assert not console.audit.search(action="person.view")
