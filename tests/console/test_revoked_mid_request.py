"""A session ended or a token revoked while a request's body streams in: the request is refused, not served.

FastAPI reads a route's body before its dependencies run, and a client decides how long that takes:
the identity ``SignedInFirst`` checked before the body must be checked again after it (a review
found a version that trusted the first check). Each test calls the app as uvicorn does, its
``receive`` disabling the account between the headers and the body.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from lineage.console.app import Console, create_app
from lineage.console.sessions import COOKIE
from tests.console.conftest import LINKED, csrf_of

Clients = Callable[[str | None], TestClient]


def _post(app: Any, path: str, body: bytes, headers: list[tuple[bytes, bytes]], meanwhile: Callable[[], None]) -> int:
    """POST ``body`` to ``app`` as uvicorn would; ``meanwhile`` runs after the headers, before the body arrives."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode()), *headers],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80), "state": {},
    }  # fmt: skip
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            meanwhile()  # e.g. an admin disables the account while the client is still sending its body
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def test_a_token_revoked_while_its_request_body_streams_is_refused(console: Console) -> None:
    """A token revoked (its account disabled) while the JSON body streams in gets 401, not the answer."""
    app = create_app(console)
    token = console.accounts.new_token("analyst")[1]
    body = json.dumps({"identifier": LINKED[0], "case_reference": "C-1"}).encode()
    status = _post(app, "/api/person", body,
                   [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json")],
                   lambda: console.accounts.set_disabled("analyst", True, by="admin"))  # fmt: skip
    assert console.accounts.by_token(token) is None  # revoked by the time the route ran
    assert status == 401, f"the disabled account's revoked token was still served: {status}"


def test_a_session_ended_while_its_form_streams_is_refused(console: Console, client_for: Clients) -> None:
    """A session ended while the form streams in is sent to sign in (303), not shown the person."""
    analyst = client_for("analyst")
    csrf = csrf_of(analyst.get("/person").text)
    cookie = analyst.cookies[COOKIE]
    body = f"csrf={csrf}&case_reference=C-1&identifier={LINKED[0]}".encode()
    status = _post(analyst.app, "/person", body,
                   [(b"cookie", f"{COOKIE}={cookie}".encode()),
                    (b"content-type", b"application/x-www-form-urlencoded")],
                   lambda: console.accounts.set_disabled("analyst", True, by="admin"))  # fmt: skip
    assert console.sessions.get(cookie) is None  # ended by the time the route ran
    assert status == 303, f"the disabled account's ended session was still served: {status}"


def test_a_disabled_admin_s_in_flight_request_cannot_add_an_admin(console: Console) -> None:
    """A stolen admin token, disabled by another admin while its POST streams in, cannot add an admin."""
    app = create_app(console)
    console.accounts.add("root", "admin")
    token = console.accounts.new_token("admin")[1]
    body = json.dumps({"name": "mallory", "role": "admin"}).encode()
    status = _post(app, "/api/users", body,
                   [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json")],
                   lambda: console.accounts.set_disabled("admin", True, by="root"))  # fmt: skip
    assert console.accounts.get("mallory") is None, f"a disabled admin's token added an admin ({status})"


def test_a_disabled_admin_s_in_flight_form_without_fields_cannot_enable_itself(
    console: Console, client_for: Clients
) -> None:
    """A route with no form fields (FastAPI reads no body first): the session is read after the form all the same."""
    admin = client_for("admin")
    console.accounts.add("root", "admin")
    csrf = csrf_of(admin.get("/users").text)
    cookie = admin.cookies[COOKIE]
    status = _post(admin.app, "/users/admin/enable", f"csrf={csrf}".encode(),
                   [(b"cookie", f"{COOKIE}={cookie}".encode()),
                    (b"content-type", b"application/x-www-form-urlencoded")],
                   lambda: console.accounts.set_disabled("admin", True, by="root"))  # fmt: skip
    assert status == 303, f"the disabled admin's ended session was served: {status}"
    assert console.accounts.get("admin") is None  # still disabled: it did not enable itself
