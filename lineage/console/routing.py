"""Who may open each route: the routers' role tables, the one role check, and who is asking.

Each router module (``pages``, ``api``) builds a ``Routes``: its FastAPI router and, beside it, the
roles each of its routes admits, declared on the route itself. ``app.create_app`` merges the tables
once, when it builds the app, into ``app.state.roles``; ``signed_in`` reads that table alone, and a
route without an entry is refused to everyone, so a forgotten declaration fails closed. Nothing here
imports a router: the routers import this module, and the app imports both (no import circle, no
table filled by importing another module). The two middlewares live here too: ``SignedInFirst``
(no body read before sign-in) and ``SecurityHeaders``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lineage.console.accounts import ROLES, Account, Accounts
from lineage.console.audit import Audit
from lineage.console.cases import Cases
from lineage.console.service import Service
from lineage.console.sessions import COOKIE, Session, Sessions, same_token

__all__ = ["CSP", "PUBLIC", "Console", "Principal", "Refused", "RoleTable", "Routes", "SecurityHeaders",
           "SignedInFirst", "Who", "role_table"]  # fmt: skip

#: (method, path) -> the roles allowed
RoleTable = Mapping[tuple[str, str], tuple[str, ...]]
#: the routes anyone may open: signing in, and our own CSS and scripts
PUBLIC = frozenset({("GET", "/login"), ("POST", "/login"), ("GET", "/static/map.js"), ("GET", "/static")})
# paths a user holding a one-time password may still open
_BEFORE_CHANGE = {"/account/password", "/logout"}


@dataclass
class Routes:
    """A router and the roles each of its routes admits (declared with ``route``, read by ``role_table``)."""

    router: APIRouter
    roles: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)

    def route(self, method: str, path: str, roles: tuple[str, ...], **options: Any) -> Callable[[Any], Any]:
        """Declare a route of ``method`` at ``path`` (below the router's prefix) open to ``roles``."""
        unknown = [r for r in roles if r not in ROLES]
        if unknown or not roles:
            raise ValueError(f"{method} {path}: roles must be some of {', '.join(ROLES)}, not {unknown or 'none'}")
        self.roles[method, self.router.prefix + path] = roles
        return self.router.api_route(path, methods=[method], **options)


def role_table(*routes: Routes) -> RoleTable:
    """One read-only table of every router's declared roles; a route declared twice is a bug, refused."""
    table: dict[tuple[str, str], tuple[str, ...]] = {}
    for r in routes:
        twice = table.keys() & r.roles.keys()
        if twice:
            raise ValueError(f"routes declared twice: {sorted(twice)}")
        table.update(r.roles)
    return MappingProxyType(table)


@dataclass
class Console:
    """Everything a request may need."""

    service: Service
    accounts: Accounts
    sessions: Sessions
    audit: Audit
    cases: Cases


@dataclass(frozen=True)
class Principal:
    """Who is asking, and through what."""

    account: Account
    client: str
    session: Session | None = None
    session_id: str | None = None

    @property
    def name(self) -> str:
        """The account name."""
        return self.account.name

    @property
    def role(self) -> str:
        """The account's role."""
        return self.account.role


class Refused(Exception):
    """A request refused before any data is read."""

    def __init__(self, status: int, message: str, *, api: bool, sign_in: bool = False, to: str = "/login") -> None:
        """Say why; ``sign_in`` sends a page request to ``to`` instead."""
        super().__init__(message)
        self.status, self.message, self.api, self.sign_in, self.to = status, message, api, sign_in, to


def client_of(request: Request) -> str:
    """The client's address (the one a proxy forwarded only when ``serve`` was told to trust that proxy)."""
    return request.client.host if request.client else "unknown"


def _bearer_account(console: Console, authorization: str) -> Account | None:
    """The account a live bearer token in an ``Authorization`` header belongs to."""
    kind, _, token = authorization.partition(" ")
    return console.accounts.by_token(token) if kind.lower() == "bearer" else None


def _session_account(console: Console, session_id: str | None) -> tuple[Session, Account] | None:
    """The live session a cookie names and its enabled account."""
    session = console.sessions.get(session_id)
    found = None if session is None else console.accounts.get(session.name)
    return None if session is None or found is None else (session, found)


async def _refuse(request: Request, who: Principal, action: str, refused: Refused) -> Refused:
    """Record a refusal of a signed-in user (the route, never the request's data) and return it to raise."""
    route = getattr(request.scope.get("route"), "path", "")
    console: Console = request.app.state.console
    await run_in_threadpool(console.audit.record, who.name, who.role, action, who.client,
                            detail=f"{request.method} {route}", outcome=refused.message)  # fmt: skip
    return refused


async def signed_in(request: Request) -> Principal:
    """The signed-in user, allowed on this route; else ``Refused`` (a 403 is recorded in the audit trail)."""
    console: Console = request.app.state.console
    table: RoleTable = request.app.state.roles
    route = request.scope.get("route")
    path = getattr(route, "path", "")
    api = path.startswith("/api/")
    roles = table.get((request.method, path))
    client = client_of(request)
    if api:
        account = await run_in_threadpool(_bearer_account, console, request.headers.get("authorization", ""))
        if account is None:
            raise Refused(401, "a valid bearer token is required", api=True)
        who = Principal(account, client)
    else:
        session_id = request.cookies.get(COOKIE)
        # the whole form first, then the session, read again (not ``SignedInFirst``'s): a client sets
        # how long its body takes, and a session ended meanwhile must not be served. FastAPI reads
        # the form of a route with form fields before this runs; this reads the others' (found by
        # two reviews: a disabled admin's in-flight form enabled itself again)
        form = await request.form() if request.method == "POST" else None
        signed = await run_in_threadpool(_session_account, console, session_id)
        if signed is None:
            raise Refused(401, "sign in first", api=False, sign_in=True)
        session, found = signed
        who = Principal(found, client, session, session_id)
        if form is not None:
            given = form.get("csrf")
            if not same_token(session.csrf, given if isinstance(given, str) else None):
                message = "the form's CSRF token is missing or wrong: reload the page"
                raise await _refuse(request, who, "csrf.refused", Refused(403, message, api=False))
        if found.must_change and path not in _BEFORE_CHANGE:
            raise Refused(303, "choose a new password first", api=False, sign_in=True, to="/account/password")
    if roles is None or who.role not in roles:
        refused = Refused(403, f"the {who.role} role may not open this", api=api)
        raise await _refuse(request, who, "access.refused", refused)
    return who


class SignedInFirst:
    """Refuses a request that may carry a body, from someone not signed in, before a byte of it is read.

    FastAPI reads and parses a route's body before the route's dependencies run, so ``signed_in``
    alone came too late: three 1 GB bodies without a token took the server from 1.0 to 8.6 GB.
    The body of a signed-in user is bounded by ``MAX_BODY`` while it streams in.
    """

    def __init__(self, app: ASGIApp) -> None:
        """Wrap the app."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let a signed-in request, or one without a body, through; answer the others as ``signed_in`` would."""
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD") or (scope["method"], scope["path"]) in PUBLIC:
            return await self.app(scope, receive, send)
        request = Request(scope)
        console: Console = scope["app"].state.console
        refusal: Response
        if scope["path"].startswith("/api/"):
            signed: object = await run_in_threadpool(_bearer_account, console, request.headers.get("authorization", ""))
            refusal = JSONResponse({"error": "a valid bearer token is required"}, status_code=401)
        else:
            signed = await run_in_threadpool(_session_account, console, request.cookies.get(COOKIE))
            refusal = RedirectResponse("/login", status_code=303)
        if signed is None:
            return await refusal(scope, receive, send)
        return await self.app(scope, receive, send)


#: the signed-in user, checked against the route's roles: every route but sign-in takes it
Who = Annotated[Principal, Depends(signed_in)]


#: the pages' policy: our own scripts, styles and images alone, no framing
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


_SET = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"), (b"cross-origin-opener-policy", b"same-origin"))  # fmt: skip
_NO_STORE = (b"cache-control", b"no-store")  # pages hold personal data


class SecurityHeaders:
    """The security headers on every response: a CSP unless it set its own; no caching, but of static files.

    A plain ASGI middleware, not ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware``
    runs each request through a task and memory streams, ~1 ms of a person page's CPU.
    """

    def __init__(self, app: ASGIApp) -> None:
        """Wrap the app."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; rewrite the headers of its response's start."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        names = {name for name, _ in _SET}
        if not scope["path"].startswith("/static/"):
            names.add(_NO_STORE[0])

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() not in names]
                if not any(k.lower() == b"content-security-policy" for k, _ in headers):
                    headers.append((b"content-security-policy", CSP.encode()))
                headers.extend(_SET)
                if _NO_STORE[0] in names:
                    headers.append(_NO_STORE)
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, with_headers)
