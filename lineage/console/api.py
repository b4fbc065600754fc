"""The pages' JSON twins for automation: ``Authorization: Bearer <token>``; described at /api/openapi.json."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from lineage.console.accounts import ROLES, AccountError
from lineage.console.actions import (
    affected_download,
    answer_download,
    check_assignee,
    download_of,
    finished_job,
    open_case,
)
from lineage.console.erasure import redact_person
from lineage.console.paging import MAX_NUMBER
from lineage.console.routing import Console, Routes, Who
from lineage.console.service import (
    BreachBusy,
    BreachJob,
    breach_summary,
    check_case,
    parse_when,
    parse_window,
    plan_document,
)
from lineage.present.datamap import map_payload
from lineage.present.formats import Document, json_values, render

__all__ = ["routes"]

#: this module's routes and the roles each admits (``app.create_app`` reads them)
routes = Routes(APIRouter(prefix="/api"))


def api(method: str, path: str, *roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare an API route and the roles that may call it."""
    return routes.route(method, path, roles)


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def _json(doc: Document) -> Any:
    return json.loads(render(doc, "json"))


class PersonQuery(BaseModel):
    """A person look-up: why (the case), whom (any identifier), as of when, and in which format."""

    case_reference: str = Field(description="the request or ticket id; required before any data is shown")
    identifier: str = Field(description="any identifier of the subject (linked ones are followed)")
    as_of: str | None = Field(default=None, description="ISO 8601 time (default: now)")
    format: str = Field(default="json", pattern="^(json|csv|html)$")


class AnswerQuery(BaseModel):
    """One answer about a person, as the command line asks it: why (the case), whom, as of when, which links."""

    case_reference: str = Field(description="the request or ticket id; required before any data is shown")
    identifier: str = Field(description="any identifier of the subject (linked ones are followed)")
    as_of: str | None = Field(default=None, description="ISO 8601 time (default: now)")
    links_as_known_then: bool = Field(default=False, description="follow only the links declared by as_of")


class BreachQuery(BaseModel):
    """A breach query: the compromised holders and the window."""

    case_reference: str
    holders: list[str] = Field(min_length=1)
    start: str = Field(description="window start, ISO 8601 (UTC when no offset)")
    end: str = Field(description="window end, ISO 8601")
    aware: str | None = Field(default=None, description="when the breach became known (default: now)")


class AuditQuery(BaseModel):
    """Audit search filters; every given one must match."""

    actor: str | None = None
    action: str | None = None
    case_reference: str | None = None
    subject: str | None = None
    since: str | None = Field(default=None, description="ISO 8601 time, included (UTC when no offset)")
    until: str | None = Field(default=None, description="ISO 8601 time, included")
    before: int | None = Field(
        default=None, ge=0, le=MAX_NUMBER, description="only entries older than this seq (the next page)"
    )


class ForgetRequest(BaseModel):
    """A person's erasure from the store itself: why (the case) and whom (their identifiers)."""

    case_reference: str = Field(description="the erasure request's id, kept in the certificate")
    identifiers: list[str] = Field(min_length=1, max_length=20, description="linked ones are found and forgotten")


class NewUser(BaseModel):
    """An account to add."""

    name: str
    role: str


@api("GET", "/openapi.json", *ROLES)
def openapi(request: Request, who: Who) -> JSONResponse:
    """The OpenAPI description of these routes."""
    return JSONResponse(request.app.openapi())


@api("GET", "/me", *ROLES)
def me(who: Who) -> dict[str, str]:
    """Who the token belongs to."""
    return {"name": who.name, "role": who.role}


@api("POST", "/person", "analyst")
def person(request: Request, body: PersonQuery, who: Who) -> Response:
    """The access report and erasure plan (JSON), or the same as CSV or a printable page."""
    console = _console(request)
    case = check_case(body.case_reference)
    doc = console.service.person(body.identifier, parse_when("as_of", body.as_of))
    action = "person.view" if body.format == "json" else "person.download"
    console.audit.record(who.name, who.role, action, who.client, subject=body.identifier, case_ref=case,
                         detail=body.format)  # fmt: skip
    if body.format == "json":
        return JSONResponse(_json(doc))
    return download_of(request, doc, body.format, f"access-{case}")


def _document(doc: Document) -> dict[str, Any]:
    """A document as its three parts, so a client renders it exactly as from the store (``lineage access``)."""
    title, facts, tables = doc
    return {"title": title, "facts": json_values(facts), "tables": json_values(tables)}


@api("POST", "/access", "analyst")
def access(request: Request, body: AnswerQuery, who: Who) -> JSONResponse:
    """The access report alone, as title, facts and tables (what ``lineage access --console`` prints)."""
    return _answer(request, "access", body, who)


@api("POST", "/erasure", "analyst")
def erasure(request: Request, body: AnswerQuery, who: Who) -> JSONResponse:
    """The erasure plan alone, as title, facts and tables (what ``lineage erasure --console`` prints)."""
    return _answer(request, "erasure", body, who)


def _answer(request: Request, name: str, body: AnswerQuery, who: Who) -> JSONResponse:
    console = _console(request)
    case = check_case(body.case_reference)
    ask = console.service.access if name == "access" else console.service.erasure
    doc = ask(body.identifier, parse_when("as_of", body.as_of), links_as_known_then=body.links_as_known_then)
    console.audit.record(who.name, who.role, "person.view", who.client, subject=body.identifier, case_ref=case,
                         detail=name)  # fmt: skip
    return JSONResponse(_document(doc))


@api("POST", "/forget", "admin")
def forget(request: Request, body: ForgetRequest, who: Who) -> JSONResponse:
    """Forget a person in the store (``lineage forget``) and the console database; the counts, never an identifier."""
    console = _console(request)
    case = check_case(body.case_reference)
    # recorded first, without the identifiers: the trail must not name the person being erased
    console.audit.record(who.name, who.role, "store.forget", who.client, case_ref=case,
                         detail=f"{len(body.identifiers)} identifier(s) given")  # fmt: skip
    made = console.service.forget(body.identifiers, case)
    redacted = redact_person(console.audit, [c.digest for c in made], case, actor=who.name, role=who.role,
                             client=who.client)  # fmt: skip
    console.service.forgotten()  # after the redaction, which deletes every kept registers
    cert = made[0]
    fields = ("case_ref", "status", "events_rows", "holdings_rows", "files_rewritten", "snapshots_expired",
              "files_removed", "pins_removed", "kafka_bound")  # fmt: skip
    return JSONResponse({"erased_at": cert.erased_at.isoformat(), **{f: getattr(cert, f) for f in fields},
                         "console": asdict(redacted)})  # fmt: skip


@api("GET", "/holders", "responder", "analyst")
def holders(request: Request, who: Who) -> list[str]:
    """Every holder in the store."""
    return _console(request).service.holders()


@api("POST", "/breach", "responder")
def breach(request: Request, body: BreachQuery, who: Who) -> JSONResponse:
    """Start a breach query (kept in the console database); poll the returned job. 429 past the caps."""
    console = _console(request)
    case = check_case(body.case_reference)
    t1, t2 = parse_window("start", body.start, "end", body.end)
    try:
        job = console.service.start_breach(who.name, case, body.holders, t1, t2, parse_when("aware", body.aware))
    except BreachBusy as exc:
        return JSONResponse({"error": str(exc)}, status_code=429)
    window = f"holders={','.join(body.holders)} from={t1.isoformat()} to={t2.isoformat()}"
    console.audit.record(who.name, who.role, "breach.run", who.client, case_ref=case, detail=window)
    return JSONResponse(_job(job), status_code=202)


def _job(job: BreachJob) -> dict[str, Any]:
    out: dict[str, Any] = {"job": job.id, "case_reference": job.case_ref, "status": job.status,
                           "holders": job.holders, "from": job.t1, "to": job.t2, "started": job.started,
                           "finished": job.finished}  # fmt: skip
    if job.error:
        out["error"] = job.error
    if job.status == "done":
        out["report"] = _json(breach_summary(job))
    return out


@api("GET", "/breach", "responder")
def breach_jobs(request: Request, who: Who) -> JSONResponse:
    """The caller's kept breach assessments, newest first (without their reports)."""
    jobs = _console(request).service.jobs(who.name)
    return JSONResponse([{k: v for k, v in _job(j).items() if k != "report"} for j in jobs])


@api("GET", "/breach/{job_id}", "responder")
def breach_job(request: Request, job_id: str, who: Who) -> JSONResponse:
    """A breach query's status, and its report once done."""
    job = _console(request).service.job(who.name, job_id)
    if job is None:
        return JSONResponse({"error": "no such breach assessment"}, status_code=404)
    return JSONResponse(_job(job))


@api("GET", "/breach/{job_id}/affected.csv", "responder")
def breach_affected(request: Request, job_id: str, who: Who) -> Response:
    """The affected list as CSV (audited)."""
    console = _console(request)
    job = finished_job(console, who, job_id)
    if job is None:
        return JSONResponse({"error": "no finished breach assessment with that id"}, status_code=404)
    return affected_download(console, who, job)


@api("GET", "/breach/{job_id}/plan.{fmt}", "responder")
def breach_plan(request: Request, job_id: str, fmt: str, who: Who) -> Response:
    """The notification plan as CSV or JSON."""
    job = finished_job(_console(request), who, job_id)
    if job is None or fmt not in ("csv", "json"):
        return JSONResponse({"error": "no finished breach assessment with that id"}, status_code=404)
    return download_of(request, plan_document(job), fmt, f"breach-{job.case_ref}-plan")


class CaseOpen(BaseModel):
    """An access or erasure request to keep as a case, answered now from the store."""

    case_reference: str = Field(description="the request or ticket id")
    kind: str = Field(default="access", description="access or erasure")
    received: str | None = Field(default=None, description="the day it was received, YYYY-MM-DD (default: today)")
    identifier: str = Field(description="any identifier of the subject (never stored in clear)")
    assignee: str | None = Field(default=None, description="an analyst's account name")


class CaseChange(BaseModel):
    """A case's new status and or assignee ("" for nobody)."""

    status: str | None = None
    assignee: str | None = None


@api("GET", "/cases", "analyst")
def cases(request: Request, who: Who, status: str = "", assignee: str = "") -> JSONResponse:
    """Cases, the earliest due first, each with ``overdue`` and the due-date rule."""
    today = datetime.now(UTC).date()
    found = _console(request).cases.listing(status or None, assignee or None)
    return JSONResponse([c.as_json(today) for c in found])


@api("POST", "/cases", "analyst")
def case_open(request: Request, body: CaseOpen, who: Who) -> JSONResponse:
    """Open a case with the answer attached (the look-up is audited)."""
    case = open_case(_console(request), who, body.case_reference, body.kind, body.received or "", body.identifier,
                     body.assignee or "")  # fmt: skip
    return JSONResponse(case.as_json(datetime.now(UTC).date()), status_code=201)


@api("GET", "/cases/{case_ref}", "analyst")
def case(request: Request, case_ref: str, who: Who) -> JSONResponse:
    """One case (its answer is a separate, audited download)."""
    found = _console(request).cases.get(case_ref)
    if found is None:
        return JSONResponse({"error": "no such case"}, status_code=404)
    return JSONResponse(found.as_json(datetime.now(UTC).date()))


@api("POST", "/cases/{case_ref}", "analyst")
def case_update(request: Request, case_ref: str, body: CaseChange, who: Who) -> JSONResponse:
    """Set a case's status and or assignee."""
    console = _console(request)
    chosen = None if body.assignee is None else check_assignee(console, body.assignee) or ""
    found = console.cases.update(case_ref, who.name, status=body.status or None, assignee=chosen)
    return JSONResponse(found.as_json(datetime.now(UTC).date()))


@api("GET", "/cases/{case_ref}/answer.json", "analyst")
def case_answer(request: Request, case_ref: str, who: Who) -> Response:
    """The answer attached to a case, as kept (audited)."""
    found = answer_download(_console(request), who, case_ref)
    return found or JSONResponse({"error": "no such case"}, status_code=404)


@api("GET", "/registers", "analyst", "responder")
def registers(request: Request, who: Who) -> JSONResponse:
    """Transfers, retention, violations per organisation and the ROPA document, with the read's stamp facts."""
    found = _console(request).service.registers()
    body = {**json_values(found["stamp"]), "transfers": _json(found["transfers"]), "retention": found["retention"],
            "violations": found["violations"], "ropa": _json(found["ropa"])}  # fmt: skip
    return JSONResponse(json.loads(json.dumps(body, default=str)))


@api("GET", "/map", "analyst", "responder")
def datamap(request: Request, who: Who) -> JSONResponse:
    """The data map's holders and flows, and the stamp facts of the read it was drawn from."""
    drawn = _console(request).service.datamap()
    return JSONResponse({**json.loads(map_payload(drawn.map)), **json_values(drawn.stamp.facts())})


@api("POST", "/audit", "auditor")
def audit(request: Request, body: AuditQuery, who: Who) -> JSONResponse:
    """Search the audit trail (newest first, at most 500; pass the last seq as ``before`` for the next)."""
    console = _console(request)
    since, until = parse_when("since", body.since), parse_when("until", body.until)
    rows = console.audit.search(actor=body.actor, action=body.action, case_ref=body.case_reference,
                                subject=body.subject, since=since, until=until, before=body.before)  # fmt: skip
    console.audit.record(who.name, who.role, "audit.search", who.client, subject=body.subject,
                         case_ref=body.case_reference, detail=f"actor={body.actor} action={body.action}")  # fmt: skip
    return JSONResponse(rows)


@api("GET", "/users", "admin")
def users(request: Request, who: Who) -> list[dict[str, object]]:
    """Every account (never a hash)."""
    return _console(request).accounts.listing()


@api("POST", "/users", "admin")
def user_add(request: Request, body: NewUser, who: Who) -> JSONResponse:
    """Add an account; the answer holds its one-time password."""
    console = _console(request)
    try:
        password = console.accounts.add(body.name, body.role)
    except AccountError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    console.audit.record(who.name, who.role, "user.add", who.client, detail=f"{body.name} as {body.role}")
    return JSONResponse({"name": body.name, "role": body.role, "one_time_password": password}, status_code=201)
