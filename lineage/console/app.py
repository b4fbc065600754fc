"""The console's web app: FastAPI, one role check for every route, security headers on every response.

The routers (``pages``, ``api``) declare each route's roles beside it (``routing.Routes``);
``create_app`` merges their tables once into ``app.state.roles``, which the one dependency
``routing.signed_in`` reads: a route without an entry is refused to everyone, so a forgotten
declaration fails closed. Pages take a session cookie (and a CSRF token on every POST); ``/api/``
routes take only a bearer token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import ASGIApp

from lineage.console import api, pages
from lineage.console.filters import install as install_filters
from lineage.console.routing import PUBLIC, Console, Principal, Refused, SecurityHeaders, SignedInFirst, Who, role_table
from lineage.errors import LineageError
from lineage.present.datamap import MAP_SCRIPT

__all__ = ["MAX_BODY", "PUBLIC", "Console", "Principal", "Refused", "Who", "create_app"]

HERE = Path(__file__).parent
#: the largest request body read: the console's forms and JSON bodies are a few kilobytes
MAX_BODY = 1024 * 1024


class _ConsoleAPI(FastAPI):
    """The app with the security headers outside every layer of its stack.

    Added as a middleware they would sit inside Starlette's outermost ones, and the internal error
    page (``ServerErrorMiddleware`` runs the ``Exception`` handler) and the 413 of a body declared
    over the limit went out without them (found by a review).
    """

    def build_middleware_stack(self) -> ASGIApp:
        """The stack FastAPI builds, wrapped in ``SecurityHeaders``."""
        return SecurityHeaders(super().build_middleware_stack())


def create_app(
    console: Console, on_shutdown: Callable[[], None] | None = None, on_start: Callable[[], None] | None = None
) -> FastAPI:
    """The app: pages, their JSON twins, our static files, and the security headers.

    ``on_start`` runs once the server starts serving, ``on_shutdown`` at its end.
    """
    lifespan = None if on_shutdown is None and on_start is None else _running_until(on_start, on_shutdown)
    app = _ConsoleAPI(title="lineage console", openapi_url=None, docs_url=None, redoc_url=None, max_body_size=MAX_BODY,
                  lifespan=lifespan)  # fmt: skip
    app.state.console = console
    app.state.roles = role_table(pages.routes, api.routes)  # read by ``signed_in`` on every request
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.add_middleware(SignedInFirst)  # its refusals get the headers too: ``SecurityHeaders`` wraps the whole stack

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

    @app.get("/static/map.js", include_in_schema=False)
    def map_script() -> Response:
        return Response(MAP_SCRIPT, media_type="text/javascript")

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(pages.routes.router)
    app.include_router(api.routes.router)
    return app


def _running_until(
    start: Callable[[], None] | None, stop: Callable[[], None] | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A lifespan that calls ``start`` as the server starts and ``stop`` when it shuts down."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            if start is not None:
                start()
            yield
        finally:
            if stop is not None:
                stop()

    return lifespan


def _error_page(request: Request, message: str, status: int) -> HTMLResponse:
    """A real page that says why (one line, never the input) and where to go from here."""
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "error.html", {"who": None, "csrf": "", "error": message, "status": status}, status_code=status
    )
    return response
