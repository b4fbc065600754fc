"""The console's web app: FastAPI, one role check for every route, security headers on every response.

Every page and API route declares its roles with ``page``/``api`` (kept in ``ROLES_OF``); the one
dependency ``signed_in`` finds the route's roles there and refuses what is not allowed: a route
without an entry is refused to everyone, so a forgotten declaration fails closed. Pages take a
session cookie (and a CSRF token on every POST); ``/api/`` routes take only a bearer token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from lineage.console.accounts import ROLES, Account, Accounts
from lineage.console.audit import Audit
from lineage.console.cases import Cases
from lineage.console.filters import install as install_filters
from lineage.console.service import Service
from lineage.console.sessions import COOKIE, Session, Sessions, same_token
from lineage.errors import LineageError
from lineage.present.datamap import MAP_SCRIPT

__all__ = ["MAX_BODY", "ROLES_OF", "Console", "Principal", "Refused", "Who", "create_app", "page_roles"]

HERE = Path(__file__).parent
#: (method, path) -> the roles allowed; filled as the routes are declared
ROLES_OF: dict[tuple[str, str], tuple[str, ...]] = {}
#: the routes anyone may open: signing in, and our own CSS and scripts
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/static/map.js"), ("GET", "/static")}
#: the largest request body read: the console's forms and JSON bodies are a few kilobytes
MAX_BODY = 1024 * 1024
# paths a user holding a one-time password may still open
_BEFORE_CHANGE = {"/account/password", "/logout"}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


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


def page_roles(method: str, path: str, roles: tuple[str, ...]) -> None:
    """Declare a route's roles (the decorators in ``pages`` and ``api`` call it)."""
    for role in roles:
        assert role in ROLES, role
    ROLES_OF[method, path] = roles


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
    route = request.scope.get("route")
    path = getattr(route, "path", "")
    api = path.startswith("/api/")
    roles = ROLES_OF.get((request.method, path))
    client = client_of(request)
    if api:
        account = await run_in_threadpool(_bearer_account, console, request.headers.get("authorization", ""))
        if account is None:
            raise Refused(401, "a valid bearer token is required", api=True)
        who = Principal(account, client)
    else:
        session_id = request.cookies.get(COOKIE)
        signed = await run_in_threadpool(_session_account, console, session_id)
        if signed is None:
            raise Refused(401, "sign in first", api=False, sign_in=True)
        session, found = signed
        who = Principal(found, client, session, session_id)
        if request.method == "POST":
            form = await request.form()
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


class _SignedInFirst:
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


def create_app(console: Console, on_shutdown: Callable[[], None] | None = None) -> FastAPI:
    """The app: pages, their JSON twins, our static files, and the security headers; ``on_shutdown`` runs at its end."""
    from lineage.console import api, pages

    app = FastAPI(title="lineage console", openapi_url=None, docs_url=None, redoc_url=None, max_body_size=MAX_BODY,
                  lifespan=None if on_shutdown is None else _running_until(on_shutdown))  # fmt: skip
    app.state.console = console
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.add_middleware(_SignedInFirst)  # added before ``headers``, so its refusals get the headers too

    @app.exception_handler(413)
    async def too_large(request: Request, exc: Exception) -> Response:
        # Starlette's limit raises this while the body streams in (or at once for a Content-Length over it)
        message = f"request body: larger than the {MAX_BODY} bytes allowed"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=413)
        return _error_page(request, message, 413)
    app.state.words = install_filters(app.state.templates.env, console.service.taxonomy)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        if exc.api:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        if exc.sign_in:
            return RedirectResponse(exc.to, status_code=303)
        return _error_page(request, exc.message, exc.status)

    @app.exception_handler(LineageError)
    async def bad_input(request: Request, exc: LineageError) -> Response:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=400)
        return _error_page(request, message, 400)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own answer echoes the input; an identifier must not come back in an error
        fields = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) or "body" for e in exc.errors()})
        return JSONResponse({"error": f"{', '.join(fields)}: missing or not valid"}, status_code=422)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> Response:
        message = f"internal error ({type(exc).__name__}); please report it"  # never the message: it may hold data
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=500)
        return _error_page(request, message, 500)

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"  # pages hold personal data
        return response

    @app.get("/static/map.js", include_in_schema=False)
    def map_script() -> Response:
        return Response(MAP_SCRIPT, media_type="text/javascript")

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)
    return app


def _running_until(stop: Callable[[], None]) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A lifespan that calls ``stop`` when the server shuts down."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            stop()

    return lifespan


def _error_page(request: Request, message: str, status: int) -> HTMLResponse:
    """A real page that says why (one line, never the input) and where to go from here."""
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "error.html", {"who": None, "csrf": "", "error": message, "status": status}, status_code=status
    )
    return response
