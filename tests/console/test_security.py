"""The console's security on the real app over a real store: roles, CSRF, sessions, hostile input, the audit trail."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from lineage.console import api, pages
from lineage.console.accounts import FREE_FAILURES, ROLES
from lineage.console.app import PUBLIC, Console, create_app
from lineage.console.db import ConsoleDBError
from lineage.console.routing import Routes, role_table
from lineage.console.sessions import COOKIE
from tests.console.conftest import (
    HOSTILE_PARTY,
    HOSTILE_SYSTEM,
    LINKED,
    PASSWORD,
    World,
    csrf_of,
    sign_in,
)
from tests.fixtures import wait_until

Clients = Callable[[str | None], TestClient]
_FILLED = {"job_id": "nosuchjob", "name": "analyst", "token_id": "abcd1234", "case_ref": "NO-SUCH-CASE", "fmt": "csv"}


def _routes(console: Console) -> list[tuple[str, str]]:
    app = create_app(console)
    found = []
    for route in app.routes:
        if isinstance(route, APIRoute):
            found += [(method, route.path) for method in sorted(route.methods)]
    return found


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: _FILLED[m.group(1)], path)


def _call(client: TestClient, method: str, path: str, csrf: str = "", token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method == "GET":
        return client.get(_url(path), headers=headers, follow_redirects=False).status_code
    if path.startswith("/api/"):
        return client.post(_url(path), json={}, headers=headers, follow_redirects=False).status_code
    return client.post(_url(path), data={"csrf": csrf}, follow_redirects=False).status_code


def test_every_route_declares_its_roles(console: Console) -> None:
    """A route without a declaration would be refused to all; this names any, so none is forgotten."""
    roles = create_app(console).state.roles
    undeclared = [r for r in _routes(console) if r not in roles and r not in PUBLIC]
    assert undeclared == []
    assert len(roles) >= 25


def test_the_role_table_is_built_with_the_app_from_the_routers(console: Console) -> None:
    """The app's role table is the routers' own declarations merged once, read-only: no module-level global."""
    roles = create_app(console).state.roles
    assert dict(roles) == {**pages.routes.roles, **api.routes.roles}
    assert ("POST", "/api/person") in roles and ("POST", "/person") in roles
    with pytest.raises(TypeError):
        roles["GET", "/anything"] = ("admin",)  # type: ignore[index]


def test_a_route_declared_twice_or_with_an_unknown_role_is_refused() -> None:
    """Two routers declaring one route, or a route naming no known role, fail when the table is built."""
    from fastapi import APIRouter

    first, second = Routes(APIRouter()), Routes(APIRouter())
    first.route("GET", "/x", ("admin",))(lambda: None)
    second.route("GET", "/x", ("analyst",))(lambda: None)
    with pytest.raises(ValueError, match="declared twice"):
        role_table(first, second)
    with pytest.raises(ValueError, match="roles must be some of"):
        first.route("GET", "/y", ("root",))


def test_every_route_refuses_anonymous_requests(console: Console, client_for: Clients) -> None:
    """Pages send an anonymous visitor to sign in; API routes answer 401; none shows anything else."""
    anonymous = client_for(None)
    for method, path in _routes(console):
        if (method, path) in PUBLIC:
            continue
        status = _call(anonymous, method, path)
        assert status == (401 if path.startswith("/api/") else 303), (method, path)


def test_every_route_refuses_the_wrong_roles(console: Console, client_for: Clients) -> None:
    """Each role, signed in (pages, with a valid CSRF token) and by token (API), gets 403 where it is not allowed."""
    roles = create_app(console).state.roles
    for role in ROLES:
        client = client_for(role)
        csrf = csrf_of(client.get("/").text)
        _, token = console.accounts.new_token(role)
        for method, path in _routes(console):
            allowed = roles.get((method, path))
            if allowed is None or role in allowed:
                continue
            status = _call(client, method, path, csrf, token if path.startswith("/api/") else None)
            assert status == 403, (role, method, path, status)


def test_allowed_roles_open_their_pages(client_for: Clients) -> None:
    """The refusals above are not everything refusing: each role opens its own pages."""
    for role, paths in {"analyst": ["/person", "/registers", "/map"], "responder": ["/breach", "/registers", "/map"],
                        "auditor": ["/audit"], "admin": ["/users"]}.items():  # fmt: skip
        client = client_for(role)
        for path in paths:
            assert client.get(path).status_code == 200, (role, path)


def test_state_changing_requests_without_the_csrf_token_are_refused(console: Console, client_for: Clients) -> None:
    """A POST with no token or another session's token is refused before anything runs; only the refusal is recorded."""
    analyst, other = client_for("analyst"), client_for("analyst")
    foreign = csrf_of(other.get("/").text)
    before = len(console.audit.search())
    for data in ({}, {"csrf": ""}, {"csrf": foreign}):
        r = analyst.post("/person", data={**data, "case_reference": "C-1", "identifier": LINKED[0]})
        assert r.status_code == 403
    assert analyst.post("/logout", data={"csrf": foreign}, follow_redirects=False).status_code == 403
    assert analyst.get("/person").status_code == 200  # still signed in
    added = console.audit.search()[: len(console.audit.search()) - before]
    assert [e["action"] for e in added] == ["csrf.refused"] * 4


def test_sign_in_without_the_form_token_is_refused(client_for: Clients) -> None:
    """Login CSRF: a cross-site POST to /login, lacking the form's cookie-bound token, signs no one in."""
    client = client_for(None)
    r = client.post("/login", data={"name": "analyst", "password": PASSWORD, "csrf": "x"}, follow_redirects=False)
    assert r.status_code == 200 and COOKIE not in client.cookies
    assert client.get("/person", follow_redirects=False).status_code == 303


def test_session_fixation_is_refused(client_for: Clients) -> None:
    """A session id planted before sign-in is never the one signed in; a planted live session is ended."""
    attacker = client_for("analyst")
    planted = attacker.cookies[COOKIE]
    victim = client_for(None)
    victim.cookies.set(COOKIE, planted, domain="127.0.0.1", path="/")
    sign_in(victim, "responder")
    assert victim.cookies[COOKIE] != planted
    assert attacker.get("/person", follow_redirects=False).status_code == 303  # the planted session was ended
    assert victim.get("/breach").status_code == 200


def test_a_cookie_is_useless_after_sign_out(client_for: Clients) -> None:
    """Sign-out deletes the session on the server: a copy of the cookie no longer signs anyone in."""
    client = client_for("analyst")
    stolen = client.cookies[COOKIE]
    client.post("/logout", data={"csrf": csrf_of(client.get("/").text)}, follow_redirects=False)
    replay = client_for(None)
    replay.cookies.set(COOKIE, stolen)
    assert replay.get("/person", follow_redirects=False).status_code == 303


def test_cookies_are_http_only_and_same_site_strict(client_for: Clients) -> None:
    """The session cookie cannot be read by scripts nor sent by other sites."""
    client = client_for(None)
    form = client.get("/login")
    r = client.post("/login", data={"name": "analyst", "password": PASSWORD, "csrf": csrf_of(form.text)},
                    follow_redirects=False)  # fmt: skip
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")


def test_an_idle_session_ends(console: Console, client_for: Clients) -> None:
    """Past the idle timeout the session is gone."""
    client = client_for("analyst")
    console.sessions.idle_timeout_s = 0.3
    time.sleep(0.6)
    assert client.get("/person", follow_redirects=False).status_code == 303


def test_lockout_after_failed_sign_ins(console: Console, client_for: Clients) -> None:
    """Past the free failures the account locks: even the right password is refused; each failure is audited."""
    client = client_for(None)
    for _ in range(FREE_FAILURES + 1):
        form = client.get("/login")
        r = client.post("/login", data={"name": "analyst", "password": "wrong-password-1", "csrf": csrf_of(form.text)})
        assert r.status_code == 401
    form = client.get("/login")
    r = client.post("/login", data={"name": "analyst", "password": PASSWORD, "csrf": csrf_of(form.text)})
    assert r.status_code == 401 and "too many failed sign-ins" in r.text
    assert len(console.audit.search(action="signin.failed", actor="analyst")) == FREE_FAILURES + 2


def test_parallel_guesses_cannot_outrun_the_lockout(console: Console) -> None:
    """Thirty wrong passwords at once: at most one past the free failures is checked, the rest wait out the lock."""
    from concurrent.futures import ThreadPoolExecutor

    from lineage.console.accounts import SignInRefused

    def guess(_: int) -> str:
        try:
            console.accounts.sign_in("responder", "wrong-password-1")
        except SignInRefused as refused:
            return str(refused)
        return "signed in"

    with ThreadPoolExecutor(max_workers=30) as pool:
        outcomes = list(pool.map(guess, range(30)))
    checked = sum(1 for o in outcomes if o == "wrong name or password")
    assert checked <= FREE_FAILURES + 1 and "signed in" not in outcomes, outcomes
    assert sum(1 for o in outcomes if o.startswith("too many failed sign-ins")) == 30 - checked


def test_revoked_tokens_and_one_time_passwords(console: Console, client_for: Clients) -> None:
    """A revoked token is refused; an account on a one-time password must change it before anything else."""
    token_id, token = console.accounts.new_token("auditor")
    client = client_for(None)
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()["role"] == "auditor"
    console.accounts.revoke("auditor", token_id)
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    one_time = console.accounts.add("newbie", "analyst")
    fresh = sign_in(client_for(None), "newbie", one_time)
    r = fresh.get("/person", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/account/password"


@pytest.fixture
def hostile_pages(world: World, client_for: Clients) -> Iterator[dict[str, str]]:
    """Every page a hostile holder name reaches, as HTML."""
    analyst, responder, auditor = client_for("analyst"), client_for("responder"), client_for("auditor")
    csrf = csrf_of(analyst.get("/").text)
    pages = {p: analyst.get(p).text for p in ("/", "/person", "/registers", "/map")}
    pages["person report"] = analyst.post("/person", data={"csrf": csrf, "case_reference": "C-1",
                                                           "identifier": LINKED[0]}).text  # fmt: skip
    form = {"csrf": csrf, "case_reference": "C-1", "identifier": LINKED[0], "format": "html"}
    pages["printable"] = analyst.post("/person/download", data=form).text
    pages["breach form"] = responder.get("/breach", params={"holder": HOSTILE_SYSTEM}).text
    r = responder.post("/breach", data={"csrf": csrf_of(pages["breach form"]), "case_reference": "INC-1",
                                        "holders": [HOSTILE_SYSTEM], "start": "2026-01-01T00:00Z",
                                        "end": "2026-12-01T00:00Z"}, follow_redirects=False)  # fmt: skip
    job = r.headers["location"]

    def finished() -> bool:
        pages["breach job"] = responder.get(job).text
        return "Download the affected list" in pages["breach job"]

    wait_until(finished, "finished breach job")  # a loaded machine runs it far slower than 10 s
    pages["audit"] = auditor.get("/audit").text
    yield pages


def test_hostile_names_are_inert_on_every_page(hostile_pages: dict[str, str]) -> None:
    """Markup, quotes, SVG handlers and javascript: URLs in system and party names stay escaped text everywhere."""
    assert "Download the affected list" in hostile_pages["breach job"]
    for name, html in hostile_pages.items():
        for raw in (HOSTILE_SYSTEM, HOSTILE_PARTY, "<svg onload", "<script>alert", "<img src=x", 'href="javascript:'):
            assert raw not in html, (name, raw)
    assert "&lt;svg onload=alert(1)&gt;" in hostile_pages["person report"]
    assert "javascript:alert(2)//&lt;/script&gt;" in hostile_pages["person report"]
    assert "<script" not in hostile_pages["printable"]


def test_every_page_has_a_strict_csp(client_for: Clients) -> None:
    """No inline script can run on any page: the policy allows scripts from our origin only."""
    client = client_for("analyst")
    for path in ("/", "/person", "/registers", "/map"):
        csp = client.get(path).headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    html = client.get("/map").text
    assert not re.search(r"<script(?![^>]*(src=\"/static/|type=\"application/json\"))", html)


def test_every_response_carries_the_security_headers(console: Console, client_for: Clients) -> None:
    """Pages, API answers, static files, refusals, errors: no sniffing, framing or referrer; no-store but on static."""
    analyst, anonymous = client_for("analyst"), client_for(None)
    token = console.accounts.new_token("analyst")[1]
    responses = {
        "page": analyst.get("/person"),
        "api": anonymous.get("/api/me", headers={"Authorization": f"Bearer {token}"}),
        "static": analyst.get("/static/map.js"),
        "sign-in redirect": anonymous.get("/person", follow_redirects=False),
        "api refusal": anonymous.post("/api/person", json={}),
        "not found": analyst.get("/no-such-page"),
    }
    # a body declared over the limit is refused by FastAPI's own limit, outside the app's middleware:
    # a plain-text 413 of fixed words (nothing of the request), with the headers all the same
    too_large = anonymous.post("/api/person", content=b"x" * (2 << 20), headers={"Authorization": f"Bearer {token}"})
    assert too_large.status_code == 413 and too_large.headers["content-type"].startswith("text/plain")
    responses["too large"] = too_large
    assert [r.status_code for r in responses.values()] == [200, 200, 200, 303, 401, 404, 413], responses
    for name, r in responses.items():
        assert r.headers.get("x-content-type-options") == "nosniff", name
        assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"] == "no-referrer", name
        assert r.headers["cross-origin-opener-policy"] == "same-origin", name
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], name
        assert (r.headers.get("cache-control") == "no-store") == (name != "static"), name


@pytest.mark.parametrize(
    "identifier",
    ["' OR '1'='1", "x'); DROP TABLE console_audit; --", "../../../../etc/passwd", "%2e%2e%2f", "a\x00b", "$ids"],
)
def test_identifiers_with_sql_or_path_syntax_are_harmless(
    console: Console, client_for: Clients, identifier: str
) -> None:
    """Such an identifier finds nobody, changes nothing, and never reaches a file name."""
    client = client_for("analyst")
    csrf = csrf_of(client.get("/").text)
    r = client.post("/person", data={"csrf": csrf, "case_reference": "C-9", "identifier": identifier})
    assert r.status_code in (200, 400)
    if r.status_code == 200:
        assert "No data held" in r.text
    d = client.post("/person/download", data={"csrf": csrf, "case_reference": "C-9", "identifier": identifier,
                                              "format": "csv"})  # fmt: skip
    if d.status_code == 200:
        assert d.headers["content-disposition"] == 'attachment; filename="access-C-9.csv"'
    assert console.audit.search(action="signin.ok")  # the table is still there


@pytest.mark.parametrize("case", ["../../evil", "..", "/etc/passwd", "a/b", 'x"; filename="evil.sh', "", "C 1"])
def test_download_names_cannot_traverse_paths(client_for: Clients, case: str) -> None:
    """A case reference that is not a plain token is refused; a file is named by safe characters only."""
    client = client_for("analyst")
    csrf = csrf_of(client.get("/").text)
    r = client.post("/person/download", data={"csrf": csrf, "case_reference": case, "identifier": LINKED[0],
                                              "format": "json"})  # fmt: skip
    assert r.status_code == 400 and "content-disposition" not in r.headers
    ok = client.post("/person/download", data={"csrf": csrf, "case_reference": "DSAR#12:a", "identifier": LINKED[0],
                                               "format": "json"})  # fmt: skip
    assert ok.headers["content-disposition"] == 'attachment; filename="access-DSAR_12_a.json"'


def test_errors_never_echo_an_identifier(client_for: Clients, console: Console) -> None:
    """A refused API body names the field, never the identifier sent in it."""
    _, token = console.accounts.new_token("analyst")
    client = client_for(None)
    auth = {"Authorization": f"Bearer {token}"}
    r = client.post("/api/person", json={"identifier": "secret-person-42"}, headers=auth)
    assert r.status_code == 422 and "secret-person-42" not in r.text and "case_reference" in r.text


def test_one_audit_entry_per_action(console: Console, client_for: Clients, world: World) -> None:
    """Sign-in, look-up, download, breach run and download, user change, sign-out: one entry each, with who and why."""
    analyst = client_for("analyst")
    csrf = csrf_of(analyst.get("/").text)
    analyst.post("/person", data={"csrf": csrf, "case_reference": "C-1", "identifier": LINKED[1]})
    analyst.post("/person/download", data={"csrf": csrf, "case_reference": "C-1", "identifier": LINKED[1],
                                           "format": "csv"})  # fmt: skip
    responder = client_for("responder")
    r = responder.post("/breach", data={"csrf": csrf_of(responder.get("/").text), "case_reference": "INC-2",
                                        "holders": [HOSTILE_SYSTEM], "start": "2026-01-01T00:00Z",
                                        "end": "2026-12-01T00:00Z"}, follow_redirects=False)  # fmt: skip
    # polled until the job is done (a 404 before then is not audited), then downloaded once
    wait_until(lambda: responder.get(r.headers["location"] + "/affected.csv").status_code == 200, "affected list")
    admin = client_for("admin")
    admin.post("/users", data={"csrf": csrf_of(admin.get("/").text), "name": "extra", "role": "auditor"})
    analyst.post("/logout", data={"csrf": csrf})
    entries = console.audit.search()
    counts = Counter(e["action"] for e in entries)
    assert counts == Counter({"signin.ok": 3, "person.view": 1, "person.download": 1, "breach.run": 1,
                              "breach.download": 1, "user.add": 1, "signout": 1})  # fmt: skip
    view = next(e for e in entries if e["action"] == "person.view")
    assert (view["actor"], view["role"], view["case_ref"], view["subject"]) == ("analyst", "analyst", "C-1", LINKED[1])
    assert view["client"] and view["at"]


def test_the_audit_trail_cannot_be_altered(console: Console, client_for: Clients) -> None:
    """No route changes or deletes entries, and the table itself refuses UPDATE and DELETE."""
    assert not [r for r in _routes(console) if r[0] in ("PUT", "PATCH", "DELETE")]
    auditor = client_for("auditor")
    before = console.audit.search()
    auditor.post("/audit", data={"csrf": csrf_of(auditor.get("/").text), "actor": "auditor", "action": "signin.ok"})
    after = console.audit.search()
    assert after[len(after) - len(before) :] == before  # old entries unchanged; only the search itself was added
    for sql in ("UPDATE console_audit SET actor = 'x'", "DELETE FROM console_audit"):
        with pytest.raises(ConsoleDBError, match="append-only"), console.audit.db.tx() as tx:
            tx.run(sql)
    assert console.audit.search()[-len(before) :] == before


def test_a_response_s_own_content_security_policy_is_kept(console: Console, client_for: Clients) -> None:
    """The printable page sets its own policy (its inline style): the app's default does not replace it."""
    analyst = client_for("analyst")
    csrf = csrf_of(analyst.get("/person").text)
    form = {"csrf": csrf, "case_reference": "C-1", "identifier": LINKED[0], "format": "html"}
    printable = analyst.post("/person/download", data=form)
    page = analyst.get("/person")
    assert printable.status_code == 200 and page.status_code == 200
    assert printable.headers["content-security-policy"] != page.headers["content-security-policy"]
    assert "style-src 'unsafe-inline'" in printable.headers["content-security-policy"]
    assert len(printable.headers.get_list("content-security-policy")) == 1
    assert printable.headers["cache-control"] == "no-store" and printable.headers["x-frame-options"] == "DENY"


def test_the_internal_error_page_carries_the_security_headers(
    console: Console, client_for: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug's 500 page (made outside the app's middleware, by Starlette's error layer) gets every header too."""
    analyst = client_for("analyst")
    csrf = csrf_of(analyst.get("/person").text)

    def bug(*_: object, **__: object) -> object:
        raise RuntimeError("a bug")

    monkeypatch.setattr(console.service, "person", bug)
    client = TestClient(analyst.app, base_url="http://127.0.0.1", raise_server_exceptions=False,
                        cookies=analyst.cookies)  # fmt: skip
    r = client.post("/person", data={"csrf": csrf, "case_reference": "C-1", "identifier": LINKED[0]})
    assert r.status_code == 500 and "internal error" in r.text and "a bug" not in r.text
    assert r.headers.get("cache-control") == "no-store"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
