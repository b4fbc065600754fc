"""The console's web app: FastAPI, one role check for every route, security headers on every response.

Every page and API route declares its roles with ``page``/``api`` (kept in ``ROLES_OF``); the one
dependency ``signed_in`` finds the route's roles there and refuses what is not allowed: a route
without an entry is refused to everyone, so a forgotten declaration fails closed. Pages take a
session cookie (and a CSRF token on every POST); ``/api/`` routes take only a bearer token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from lineage.console.accounts import ROLES, Account, Accounts
from lineage.console.audit import Audit
from lineage.console.filters import install as install_filters
from lineage.console.service import Service
from lineage.console.sessions import COOKIE, Session, Sessions, same_token
from lineage.errors import LineageError
from lineage.present.datamap import MAP_SCRIPT

__all__ = ["ROLES_OF", "Console", "Principal", "Refused", "Who", "create_app", "page_roles"]

HERE = Path(__file__).parent
#: (method, path) -> the roles allowed; filled as the routes are declared
ROLES_OF: dict[tuple[str, str], tuple[str, ...]] = {}
#: the routes anyone may open: signing in, and our own CSS and scripts
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/static/map.js"), ("GET", "/static")}
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
    """The client's address (the proxy's forwarded one when uvicorn trusts it)."""
    return request.client.host if request.client else "unknown"


async def signed_in(request: Request) -> Principal:
    """The signed-in user, allowed on this route; else ``Refused``."""
    console: Console = request.app.state.console
    route = request.scope.get("route")
    path = getattr(route, "path", "")
    api = path.startswith("/api/")
    roles = ROLES_OF.get((request.method, path))
    client = client_of(request)
    if api:
        kind, _, token = request.headers.get("authorization", "").partition(" ")
        account = await run_in_threadpool(console.accounts.by_token, token) if kind.lower() == "bearer" else None
        if account is None:
            raise Refused(401, "a valid bearer token is required", api=True)
        who = Principal(account, client)
    else:
        session_id = request.cookies.get(COOKIE)
        session = await run_in_threadpool(console.sessions.get, session_id)
        found = None if session is None else await run_in_threadpool(console.accounts.get, session.name)
        if session is None or found is None:
            raise Refused(401, "sign in first", api=False, sign_in=True)
        who = Principal(found, client, session, session_id)
        if request.method == "POST":
            form = await request.form()
            given = form.get("csrf")
            if not same_token(session.csrf, given if isinstance(given, str) else None):
                raise Refused(403, "the form's CSRF token is missing or wrong: reload the page", api=False)
        if found.must_change and path not in _BEFORE_CHANGE:
            raise Refused(303, "choose a new password first", api=False, sign_in=True, to="/account/password")
    if roles is None or who.role not in roles:
        raise Refused(403, f"the {who.role} role may not open this", api=api)
    return who


#: the signed-in user, checked against the route's roles: every route but sign-in takes it
Who = Annotated[Principal, Depends(signed_in)]


def create_app(console: Console) -> FastAPI:
    """The app: pages, their JSON twins, our static files, and the security headers."""
    from lineage.console import api, pages

    app = FastAPI(title="lineage console", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.console = console
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
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


def _error_page(request: Request, message: str, status: int) -> HTMLResponse:
    """A real page that says why (one line, never the input) and where to go from here."""
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "error.html", {"who": None, "csrf": "", "error": message, "status": status}, status_code=status
    )
    return response
