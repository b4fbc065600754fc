"""What a page and its JSON twin both do: downloads with safe names, finished assessments, opening a case.

Shared by ``pages`` and ``api``, which never import each other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from lineage.console.cases import CASE_KINDS, Case, check_choice, parse_day
from lineage.console.filters import plain_cell as cell
from lineage.console.routing import Console, Principal
from lineage.console.service import BreachJob, check_case
from lineage.errors import InvalidEventError
from lineage.present.formats import Document, render

__all__ = [
    "affected_download",
    "answer_download",
    "check_assignee",
    "download_of",
    "finished_job",
    "open_case",
    "safe_stem",
    "stamp_headers",
]

_PRINT_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def safe_stem(stem: str) -> str:
    """A file name stem of letters, digits, ``.``, ``_`` and ``-`` only, never starting with a dot: no path forms."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip(".") or "download"


def stamp_headers(stamp: Mapping[str, object]) -> dict[str, str]:
    """A CSV download's stamp as response headers (``Lineage-Store-Snapshot``, ...): CSV has no place for facts.

    The command line prints the same facts on stderr beside its CSV. Values are our own words and
    numbers; only printable ASCII is let through (a line break would end the header, a control
    character makes the server refuse the response).
    """
    headers = {}
    for name, value in stamp.items():
        if value is None:
            continue
        text = value.isoformat() if isinstance(value, datetime) else str(value)
        text = "".join(c if " " <= c <= "~" else "?" for c in " ".join(text.split()))  # printable ASCII only
        headers["Lineage-" + "-".join(part.capitalize() for part in name.split("_"))] = text
    return headers


def download_of(request: Request, doc: Document, fmt: str, stem: str) -> Response:
    """A document as an attachment; ``stem`` is made of checked characters only (no path can form)."""
    if fmt == "html":
        page_html = request.app.state.templates.get_template("print.html").render(doc=doc, cell=cell)
        body, media = page_html, "text/html"
    else:
        body = render(doc, fmt)  # CSV cells are spreadsheet-safe in render itself
        media = "text/csv" if fmt == "csv" else "application/json"
    headers = {"Content-Disposition": f'attachment; filename="{safe_stem(stem)}.{fmt}"'}
    if fmt == "html":
        headers["Content-Security-Policy"] = _PRINT_CSP  # the printable page's own inline style, nothing else
    return Response(body, media_type=media, headers=headers)


def finished_job(console: Console, who: Principal, job_id: str) -> BreachJob | None:
    """The user's assessment if it has finished, else None."""
    job = console.service.job(who.name, job_id)
    return job if job is not None and job.status == "done" else None


def affected_download(console: Console, who: Principal, job: BreachJob) -> Response:
    """A finished job's affected list as a CSV attachment streamed from the database, audited first."""
    console.audit.record(who.name, who.role, "breach.download", who.client, case_ref=job.case_ref,
                         detail=f"holders={','.join(job.holders)} records={job.records}")  # fmt: skip
    headers = {"Content-Disposition": f'attachment; filename="{safe_stem(f"breach-{job.case_ref}-affected")}.csv"'}
    return StreamingResponse(console.service.affected_csv(job.id), media_type="text/csv", headers=headers)


def check_assignee(console: Console, name: str) -> str | None:
    """An enabled analyst's name (or None for nobody); else one line saying who may be assigned."""
    if not name:
        return None
    account = console.accounts.get(name)
    if account is None or account.role != "analyst":
        raise InvalidEventError("assignee", name[:64], "must be an enabled analyst's account name")
    return name


def open_case(
    console: Console, who: Principal, case_reference: str, kind: str, received: str, identifier: str, assignee: str
) -> Case:
    """Look the person up, record the look-up, and keep the case with that answer attached."""
    case_ref = check_case(case_reference)
    check_choice("kind", kind, CASE_KINDS)
    day, chosen = parse_day("received", received), check_assignee(console, assignee)
    # before the look-up: its audit entry says the answer is attached, so the attachment must not be refused after
    console.cases.check_person(case_ref, identifier)
    doc = console.service.person(identifier)
    console.audit.record(who.name, who.role, "person.view", who.client, subject=identifier, case_ref=case_ref,
                         detail=f"{kind} case: answer attached")  # fmt: skip
    regimes = console.service.regimes(doc[1].get("jurisdiction"))
    case = console.cases.attach(case_ref=case_ref, kind=kind, received=day, identifier=identifier, regimes=regimes,
                                answer=doc, by=who.name, assignee=chosen)  # fmt: skip
    # a forget of the person begun while the answer was read: its redaction may have run before the
    # answer was written, so it is erased here, once written (either this sees the certificate, or
    # the redaction, which follows it, found the answer: ``Service._keep`` reasons the same way)
    if "erased" not in doc[1] and (erasure := console.service.erasure_of(identifier)) is not None:
        console.cases.erase_answers([console.audit.subject_digest(identifier)], erasure.case_ref)
    return case


def answer_download(console: Console, who: Principal, case_ref: str) -> Response | None:
    """A case's answer as a JSON attachment named by the case, recorded in the audit trail first; None if no case."""
    body = console.cases.answer(case_ref)
    if body is None:
        return None
    console.audit.record(who.name, who.role, "person.download", who.client, case_ref=case_ref,
                         detail="json: the answer attached to the case")  # fmt: skip
    headers = {"Content-Disposition": f'attachment; filename="{safe_stem(f"answer-{case_ref}")}.json"'}
    return Response(body, media_type="application/json", headers=headers)
