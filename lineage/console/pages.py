"""The console's pages: HTML from templates (autoescaped), forms with a CSRF token, downloads with safe names."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from lineage.console.accounts import ROLES, AccountError, SignInRefused
from lineage.console.actions import (
    affected_download,
    answer_download,
    check_assignee,
    download_of,
    finished_job,
    open_case,
    safe_stem,
    stamp_headers,
)
from lineage.console.cases import CASE_KINDS, CASE_STATUSES, Case
from lineage.console.limits import CASE_REFERENCE_CHARS, IDENTIFIER_CHARS
from lineage.console.paging import select, view, whole_number
from lineage.console.routing import Console, Principal, Routes, Who
from lineage.console.service import (
    MAX_JOBS,
    MAX_JOBS_PER_USER,
    BreachBusy,
    breach_summary,
    check_case,
    parse_when,
    parse_window,
    plan_document,
)
from lineage.console.sessions import COOKIE
from lineage.contract.law import REQUEST_DUE_RULE
from lineage.errors import InvalidEventError, LineageError
from lineage.present.datamap import MAP_WIDTH, map_payload, map_svg

__all__ = ["register_tables", "ropa_tables", "routes"]

#: this module's routes and the roles each admits (``app.create_app`` reads them)
routes = Routes(APIRouter(include_in_schema=False))
router = routes.router
_LOGIN_COOKIE = "lineage_login"
#: the sign-in page's messages by code: a link may pick one of ours, never write its own (phishing)
_LOGIN_ERRORS = {"expired": "The sign-in form expired: please try again."}


def page(method: str, path: str, *roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a page route and the roles that may open it."""
    return routes.route(method, path, roles, response_class=HTMLResponse)


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def _render(request: Request, name: str, who: Principal | None, status: int = 200, **ctx: Any) -> HTMLResponse:
    csrf = who.session.csrf if who is not None and who.session is not None else ""
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, name, {"who": who, "csrf": csrf, **ctx}, status_code=status
    )
    return response


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


# ---- signing in and out


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, error: str = "", name: str = "") -> HTMLResponse:
    """The sign-in form; ``error`` is a code for one of our messages, never text to show (phishing); ``name`` kept."""
    return _login_page(request, _LOGIN_ERRORS.get(error, ""), name=name)


def _login_page(request: Request, message: str, status: int = 200, name: str = "") -> HTMLResponse:
    """The form with a pre-session CSRF token in a cookie and the form (login CSRF), our own message, the name typed."""
    token = secrets.token_urlsafe(24)
    response = _render(request, "login.html", None, status, token=token, error=message, typed_name=name[:64])
    response.set_cookie(_LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path="/login")
    return response


def _signed_in(request: Request, name: str, client: str, to: str, old_id: str | None) -> Response:
    """A fresh session for ``name`` (never the id the browser brought), its cookie set, and on to ``to``."""
    session_id, _ = _console(request).sessions.start(name, client, old_id=old_id)
    response = RedirectResponse(to, status_code=303)
    response.set_cookie(COOKIE, session_id, httponly=True, samesite="strict", secure=_secure(request), path="/")
    return response


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Check the password; a fresh session id (never the one the browser brought); audit ok or failed."""
    console = _console(request)
    client = request.client.host if request.client else "unknown"
    expected = request.cookies.get(_LOGIN_COOKIE)
    if not expected or not secrets.compare_digest(expected.encode(), csrf.encode()):
        return _login_page(request, _LOGIN_ERRORS["expired"], name=name)
    try:
        account = console.accounts.sign_in(name, password)
    except SignInRefused as exc:
        console.audit.record(name[:64] or "-", "-", "signin.failed", client, outcome=str(exc))
        return _login_page(request, str(exc), 401, name=name)
    to = "/account/password" if account.must_change else "/"
    response = _signed_in(request, account.name, client, to, request.cookies.get(COOKIE))
    console.audit.record(account.name, account.role, "signin.ok", client)
    response.delete_cookie(_LOGIN_COOKIE, path="/login")
    return response


@page("POST", "/logout", *ROLES)
def logout(request: Request, who: Who) -> Response:
    """End the session on the server, then forget the cookie."""
    console = _console(request)
    console.sessions.end(who.session_id)
    console.audit.record(who.name, who.role, "signout", who.client)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@page("GET", "/account/password", *ROLES)
def password_form(request: Request, who: Who) -> HTMLResponse:
    """The change-password form (required after a one-time password)."""
    return _render(request, "password.html", who)


@page("POST", "/account/password", *ROLES)
def password_change(
    request: Request, who: Who, old: Annotated[str, Form()] = "", new: Annotated[str, Form()] = ""
) -> Response:
    """Change one's own password."""
    console = _console(request)
    try:
        ended = console.accounts.change_password(who.name, old, new)
    except (AccountError, SignInRefused) as exc:
        # passwords are never written back into a page: the field to retype is marked instead
        wrong = "old" if isinstance(exc, SignInRefused) else "new"
        return _render(request, "password.html", who, 400, error=str(exc), wrong=wrong)
    tokens = sum(1 for t in console.accounts.tokens(who.name) if t["revoked_at"] is None)
    console.audit.record(who.name, who.role, "password.change", who.client,
                         detail=f"other sessions ended={max(ended - 1, 0)} api tokens kept={tokens}")  # fmt: skip
    # every session ended with the old password, this one too: the user goes on in a fresh one
    return _signed_in(request, who.name, who.client, "/", who.session_id)


@page("GET", "/", *ROLES)
def home(request: Request, who: Who) -> HTMLResponse:
    """Links to what the role may open."""
    return _render(request, "home.html", who)


# ---- person


@page("GET", "/person", "analyst")
def person_form(request: Request, who: Who) -> HTMLResponse:
    """The look-up form: a case reference, then any identifier."""
    return _render(request, "person.html", who)


@page("POST", "/person", "analyst")
def person(
    request: Request,
    who: Who,
    case_reference: Annotated[str, Form()] = "",
    identifier: Annotated[str, Form()] = "",
    as_of: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """The access report and erasure plan, shown only once the look-up is in the audit trail."""
    console = _console(request)
    try:
        case = check_case(case_reference)
        when = parse_when("as_of", as_of)
        doc = console.service.person(identifier, when)
    except LineageError as exc:
        return _person_form_again(request, who, str(exc), case_reference, identifier, as_of)
    console.audit.record(who.name, who.role, "person.view", who.client, subject=identifier, case_ref=case)
    return _render(request, "person.html", who, doc=doc, case=case, identifier=identifier, as_of=as_of)


def _person_form_again(
    request: Request, who: Principal, error: str, case_reference: str, identifier: str, as_of: str
) -> HTMLResponse:
    """The form back with its error and what was typed, but never a field refused for its length (a 5 MB echo)."""
    return _render(request, "person.html", who, 400, error=error, as_of=as_of[:40],
                   case=case_reference if len(case_reference) <= CASE_REFERENCE_CHARS else "",
                   identifier=identifier if len(identifier) <= IDENTIFIER_CHARS else "")  # fmt: skip


@page("POST", "/person/download", "analyst")
def person_download(
    request: Request,
    who: Who,
    case_reference: Annotated[str, Form()] = "",
    identifier: Annotated[str, Form()] = "",
    as_of: Annotated[str, Form()] = "",
    format: Annotated[str, Form()] = "json",
) -> Response:
    """The report as JSON, CSV or a printable page; the file is named by the case, never the person."""
    console = _console(request)
    try:
        case = check_case(case_reference)
        if format not in ("json", "csv", "html"):
            raise LineageError("format: must be json, csv or html")
        doc = console.service.person(identifier, parse_when("as_of", as_of))
    except LineageError as exc:
        return _person_form_again(request, who, str(exc), case_reference, identifier, as_of)
    console.audit.record(
        who.name, who.role, "person.download", who.client, subject=identifier, case_ref=case, detail=format
    )
    return download_of(request, doc, format, f"access-{case}")


# ---- breach


@page("GET", "/breach", "responder")
def breach_form(request: Request, who: Who, holder: Annotated[list[str] | None, Query()] = None) -> HTMLResponse:
    """Pick holders (preselected from the map) and a window; the assessments kept so far."""
    return _breach_page(request, who, 200, chosen=set(holder or []))


def _breach_page(request: Request, who: Principal, status: int, *, chosen: set[str], **ctx: Any) -> HTMLResponse:
    """The breach page; of the holders asked for, only the store's own are shown as chosen.

    A link's ``?holder=`` is never written into the page as text of ours (a phishing line), nor a
    refused 1 MB name echoed back.
    """
    service = _console(request).service
    holders = service.holders()
    return _render(request, "breach.html", who, status, holders=holders, jobs=service.jobs(who.name),
                   limits=(MAX_JOBS_PER_USER, MAX_JOBS), chosen=chosen.intersection(holders), **ctx)  # fmt: skip


@page("POST", "/breach", "responder")
def breach_start(
    request: Request,
    who: Who,
    case_reference: Annotated[str, Form()] = "",
    holders: Annotated[list[str] | None, Form()] = None,
    start: Annotated[str, Form()] = "",
    end: Annotated[str, Form()] = "",
    aware: Annotated[str, Form()] = "",
) -> Response:
    """Start the query in the background and go to its progress page."""
    console = _console(request)
    try:
        case = check_case(case_reference)
        t1, t2 = parse_window("from", start, "to", end)
        job = console.service.start_breach(who.name, case, holders or [], t1, t2, parse_when("aware", aware))
    except LineageError as exc:
        status = 429 if isinstance(exc, BreachBusy) else 400
        return _breach_page(request, who, status, chosen=set(holders or []), error=str(exc))
    window = f"holders={','.join(holders or [])} from={t1.isoformat()} to={t2.isoformat()}"
    console.audit.record(who.name, who.role, "breach.run", who.client, case_ref=case, detail=window)
    return RedirectResponse(f"/breach/jobs/{job.id}", status_code=303)


@page("GET", "/breach/jobs/{job_id}", "responder")
def breach_job(request: Request, job_id: str, who: Who) -> HTMLResponse:
    """Progress while it runs (the page refreshes itself), then the counts and the notification plan."""
    job = _console(request).service.job(who.name, job_id)
    if job is None:
        return _render(request, "error.html", who, 404, error="no such breach assessment")
    doc = breach_summary(job) if job.status == "done" else None
    return _render(request, "breach_job.html", who, job=job, doc=doc)


@page("GET", "/breach/jobs/{job_id}/affected.csv", "responder")
def breach_download(request: Request, job_id: str, who: Who) -> Response:
    """The affected list: a list of people, so it is audited like a person's look-up."""
    console = _console(request)
    job = finished_job(console, who, job_id)
    if job is None:
        return _render(request, "error.html", who, 404, error="no finished breach assessment with that id")
    return affected_download(console, who, job)


@page("GET", "/breach/jobs/{job_id}/plan.{fmt}", "responder")
def breach_plan(request: Request, job_id: str, fmt: str, who: Who) -> Response:
    """The notification plan as CSV or JSON (counts and duties, no person in it)."""
    job = finished_job(_console(request), who, job_id)
    if job is None or fmt not in ("csv", "json"):
        return _render(request, "error.html", who, 404, error="no finished breach assessment with that id")
    return download_of(request, plan_document(job), fmt, f"breach-{job.case_ref}-plan")


# ---- cases


@page("GET", "/cases", "analyst")
def cases(request: Request, who: Who, status: str = "", assignee: str = "") -> HTMLResponse:
    """Access and erasure requests, the earliest due first, overdue ones marked; filtered by status and assignee."""
    return _cases_page(request, who, 200, status=status, assignee=assignee)


def _cases_page(request: Request, who: Principal, code: int, *, status: str = "", assignee: str = "",
                **ctx: Any) -> HTMLResponse:  # fmt: skip
    console = _console(request)
    try:
        found = console.cases.listing(status or None, assignee or None)
        matched = console.cases.count(status or None, assignee or None)
    except LineageError as exc:
        found, matched, code, ctx = [], 0, 400, {**ctx, "error": str(exc)}
    return _render(request, "cases.html", who, code, cases=found, matched=matched, today=datetime.now(UTC).date(),
                   filters={"status": status, "assignee": assignee}, statuses=CASE_STATUSES, kinds=CASE_KINDS,
                   analysts=analysts(console), rule=REQUEST_DUE_RULE, **ctx)  # fmt: skip


def analysts(console: Console) -> list[str]:
    """The enabled analysts: who may be assigned a case."""
    return [str(a["name"]) for a in console.accounts.listing() if a["role"] == "analyst" and not a["disabled"]]


@page("POST", "/cases", "analyst")
def case_open(
    request: Request,
    who: Who,
    case_reference: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "access",
    received: Annotated[str, Form()] = "",
    identifier: Annotated[str, Form()] = "",
    assignee: Annotated[str, Form()] = "",
) -> Response:
    """Open a case (or attach a newer answer to it): the look-up is audited, the answer kept with the case."""
    try:
        case = open_case(_console(request), who, case_reference, kind, received, identifier, assignee)
    except LineageError as exc:
        return _cases_page(request, who, 400, error=str(exc))
    return RedirectResponse(case_url(case.case_ref), status_code=303)


def case_url(case_ref: str) -> str:
    """A case's page, its reference quoted whole: it may hold ``#`` or ``:`` (``REQ#7`` is not ``/cases/REQ``)."""
    return "/cases/" + quote(case_ref, safe="")


def _case_or_404(request: Request, who: Principal, case_ref: str) -> Case | HTMLResponse:
    found = _console(request).cases.get(case_ref)
    return found or _render(request, "error.html", who, 404, error="no such case")


@page("GET", "/cases/{case_ref}", "analyst")
def case(request: Request, case_ref: str, who: Who) -> HTMLResponse:
    """One case: its dates, the rule its due date applied, its status history's last step, the answer's link."""
    found = _case_or_404(request, who, case_ref)
    if isinstance(found, HTMLResponse):
        return found
    return _render(request, "case.html", who, case=found, today=datetime.now(UTC).date(), statuses=CASE_STATUSES,
                   analysts=analysts(_console(request)), rule=REQUEST_DUE_RULE)  # fmt: skip


@page("POST", "/cases/{case_ref}", "analyst")
def case_update(
    request: Request,
    case_ref: str,
    who: Who,
    status: Annotated[str, Form()] = "",
    assignee: Annotated[str, Form()] = "",
) -> Response:
    """Set the status (who and when are kept) and the assignee."""
    console = _console(request)
    try:
        console.cases.update(
            case_ref, who.name, status=status or None, assignee=check_assignee(console, assignee) or ""
        )
    except LineageError as exc:
        return _render(request, "error.html", who, 400, error=str(exc))
    return RedirectResponse(case_url(case_ref), status_code=303)


@page("GET", "/cases/{case_ref}/answer.json", "analyst")
def case_answer(request: Request, case_ref: str, who: Who) -> Response:
    """The answer attached, as it was kept; a download of a person's data, so it is audited."""
    console = _console(request)
    found = answer_download(console, who, case_ref)
    return found or _render(request, "error.html", who, 404, error="no such case")


# ---- registers and map


@page("GET", "/registers", "analyst", "responder")
def registers(request: Request, who: Who) -> HTMLResponse:
    """Transfers, retention, policy violations and the record of processing activities: each table paged."""
    found = _console(request).service.registers()
    params = dict(request.query_params)
    views = {key: view(key, title, rows, params, facets) for key, title, rows, facets in register_tables(found)}
    kept = sum(1 for rows in found["violations"].values() for v in rows if v["clause"] == "retention")
    return _render(request, "registers.html", who, reg=found, views=views, ropa=found["ropa"] is not None,
                   policy_retention=kept, stamp=found["stamp"])  # fmt: skip


@page("GET", "/registers/{key}.csv", "analyst", "responder")
def register_download(request: Request, key: str, who: Who) -> Response:
    """One register table as CSV: every row passing the page's filters, in its sort order; its stamp in headers."""
    params = dict(request.query_params)
    found = _console(request).service.registers()
    for name, title, rows, facets in register_tables(found):
        if name == key:
            download = download_of(request, (title, {}, {key: select(rows, params, key, facets)[0]}), "csv", key)
            download.headers.update(stamp_headers(found["stamp"]))  # the read it came from, as the page shows
            return download
    return _render(request, "error.html", who, 404, error="no such register table")


def register_tables(found: Mapping[str, Any]) -> list[tuple[str, str, Sequence[Mapping[str, object]], tuple[str, ...]]]:
    """The registers page's tables: key (its parameters' prefix and file name), title, rows and facet columns."""
    tables: list[tuple[str, str, Sequence[Mapping[str, object]], tuple[str, ...]]] = [
        ("transfers", "Cross-border transfers", found["transfers"][2]["transfers"], ("year", "to_region")),
        ("retention", "Held past retention", found["retention"], ("holder",)),
    ]
    tables += [(f"violations-{safe_stem(org)}", org, rows, ("clause",)) for org, rows in found["violations"].items()]
    for name, rows in ropa_tables(found["ropa"]) or []:
        tables.append((f"ropa-{safe_stem(name)}", name.replace("_", " "), rows, ("controller",)))
    return tables


def ropa_tables(ropa: object) -> Sequence[tuple[str, Sequence[Mapping[str, object]]]] | None:
    """The ROPA answer as named tables, whatever shape its module returns (a document, rows, or an object)."""
    if ropa is None:
        return None
    if isinstance(ropa, tuple) and len(ropa) == 3:
        return list(ropa[2].items())
    if isinstance(ropa, list):
        return [("activities", [r if isinstance(r, Mapping) else vars(r) for r in ropa])]
    activities, assessments = getattr(ropa, "activities", None), getattr(ropa, "assessments", None)
    if isinstance(activities, list) and isinstance(assessments, list):  # lineage.answers.ropa.Ropa
        return [("activities", activities), ("impact_assessments", assessments)]
    rows = activities or getattr(ropa, "rows", None)
    if isinstance(rows, list):
        return ropa_tables(rows)
    return [("record", [{"value": str(ropa)}])]


@page("GET", "/map", "analyst", "responder")
def datamap(request: Request, who: Who) -> HTMLResponse:
    """The data map, with links from each holder to the breach page."""
    drawn = _console(request).service.datamap()
    m = request.app.state.words.readable_map(drawn.map)
    return _render(request, "map.html", who, m=m, svg=map_svg(m), payload=map_payload(m), width=MAP_WIDTH,
                   stamp=drawn.stamp.facts())  # fmt: skip


# ---- audit


@page("GET", "/audit", "auditor")
def audit(request: Request, who: Who) -> HTMLResponse:
    """The newest entries and the search form (the view itself is recorded: auditors are audited too)."""
    console = _console(request)
    trail = console.audit
    trail.record(who.name, who.role, "audit.view", who.client)
    rows = trail.search(limit=AUDIT_PAGE)
    return _render(request, "audit.html", who, rows=rows, filters={}, matched=trail.count(), more=_older(rows))


AUDIT_PAGE = 100


def _older(rows: Sequence[Mapping[str, Any]]) -> int | None:
    """The keyset of the next page: the last seq shown, when the page is full."""
    return int(rows[-1]["seq"]) if len(rows) == AUDIT_PAGE else None


@page("POST", "/audit", "auditor")
def audit_search(
    request: Request,
    who: Who,
    actor: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "",
    case_reference: Annotated[str, Form()] = "",
    subject: Annotated[str, Form()] = "",
    since: Annotated[str, Form()] = "",
    until: Annotated[str, Form()] = "",
    before: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Search by who, what, case (parts), whom and when (a POST: the identifier searched stays out of URLs and logs).

    Pages go back in time by keyset: ``before`` is the last entry's seq of the page shown.
    """
    console = _console(request)
    filters = {"actor": actor, "action": action, "case_ref": case_reference, "subject": subject,
               "since": since, "until": until}  # fmt: skip
    try:
        window = audit_window(since, until)
        older = whole_number("before", before) if before else None
    except LineageError as exc:
        return _render(request, "audit.html", who, 400, rows=[], filters=filters, error=str(exc), matched=None)
    found: dict[str, Any] = {"actor": actor or None, "action": action or None, "case_ref": case_reference or None,
             "subject": subject or None, "since": window[0], "until": window[1]}  # fmt: skip
    rows = console.audit.search(**found, before=older, limit=AUDIT_PAGE)
    matched = console.audit.count(**found)
    console.audit.record(who.name, who.role, "audit.search", who.client, subject=subject or None,
                         case_ref=case_reference or None, detail=f"actor={actor} action={action}")  # fmt: skip
    return _render(request, "audit.html", who, rows=rows, filters=filters, matched=matched, more=_older(rows),
                   paged=older is not None)  # fmt: skip


def audit_window(since: str, until: str) -> tuple[datetime | None, datetime | None]:
    """The audit search's time bounds from the form; an ``until`` to the minute takes in that whole minute."""
    start, end = parse_when("since", since), parse_when("until", until)
    if end is not None and len(until) == len("2026-11-01T08:00"):  # a datetime-local input sends minutes
        end += timedelta(minutes=1, microseconds=-1)
    if start is not None and end is not None and start > end:
        raise InvalidEventError("until", until[:40], "is before since")
    return start, end


# ---- users


@page("GET", "/users", "admin")
def users(request: Request, who: Who) -> HTMLResponse:
    """Accounts, their roles and tokens."""
    return _users_page(request, who)


def _users_page(request: Request, who: Principal, status: int = 200, **ctx: Any) -> HTMLResponse:
    accounts = _console(request).accounts
    listed = accounts.listing()
    tokens = {str(u["name"]): accounts.tokens(str(u["name"])) for u in listed}
    return _render(request, "users.html", who, status, users=listed, tokens=tokens, roles=ROLES, **ctx)


@page("POST", "/users", "admin")
def user_add(
    request: Request, who: Who, name: Annotated[str, Form()] = "", role: Annotated[str, Form()] = ""
) -> HTMLResponse:
    """Add an account; its one-time password is shown once."""
    console = _console(request)
    try:
        password = console.accounts.add(name, role)
    except AccountError as exc:
        return _users_page(request, who, 400, error=str(exc))
    console.audit.record(who.name, who.role, "user.add", who.client, detail=f"{name} as {role}")
    return _users_page(request, who, shown=f"One-time password for {name}", secret=password)


@page("POST", "/users/{name}/disable", "admin")
def user_disable(request: Request, name: str, who: Who) -> HTMLResponse:
    """Disable an account (its sessions end, its tokens are revoked)."""
    return _user_change(request, who, name, "user.disable")


@page("POST", "/users/{name}/enable", "admin")
def user_enable(request: Request, name: str, who: Who) -> HTMLResponse:
    """Enable an account again."""
    return _user_change(request, who, name, "user.enable")


def _user_change(request: Request, who: Principal, name: str, action: str) -> HTMLResponse:
    console = _console(request)
    try:
        console.accounts.set_disabled(name, action == "user.disable", by=who.name)
    except AccountError as exc:
        return _users_page(request, who, 400, error=str(exc))
    console.audit.record(who.name, who.role, action, who.client, detail=name)
    return _users_page(request, who)


@page("POST", "/users/{name}/reset", "admin")
def user_reset(request: Request, name: str, who: Who) -> HTMLResponse:
    """A new one-time password for an account, shown once; its sessions end, its API tokens are kept."""
    console = _console(request)
    try:
        password, ended = console.accounts.reset_password(name)
    except AccountError as exc:
        return _users_page(request, who, 400, error=str(exc))
    console.audit.record(who.name, who.role, "password.reset", who.client, detail=f"{name} sessions ended={ended}")
    return _users_page(request, who, shown=f"One-time password for {name} (its sessions ended; tokens kept)",
                       secret=password)  # fmt: skip


@page("POST", "/users/{name}/tokens", "admin")
def user_token(request: Request, name: str, who: Who) -> HTMLResponse:
    """A new API token for an account, shown once."""
    console = _console(request)
    try:
        token_id, token = console.accounts.new_token(name)
    except AccountError as exc:
        return _users_page(request, who, 400, error=str(exc))
    console.audit.record(who.name, who.role, "user.token", who.client, detail=f"{name} token {token_id}")
    return _users_page(request, who, shown=f"API token {token_id} for {name}", secret=token)


@page("POST", "/users/{name}/tokens/{token_id}/revoke", "admin")
def user_revoke(request: Request, name: str, token_id: str, who: Who) -> HTMLResponse:
    """Revoke one token."""
    console = _console(request)
    revoked = console.accounts.revoke(name, token_id)
    console.audit.record(who.name, who.role, "user.revoke", who.client, detail=f"{name} token {token_id}",
                         outcome="ok" if revoked else "no such live token")  # fmt: skip
    return _users_page(request, who)
