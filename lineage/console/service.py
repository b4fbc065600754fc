"""What the console asks the store, shared by its pages and their JSON twins; breach queries run as jobs."""

from __future__ import annotations

import dataclasses
import importlib
import re
import secrets
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lineage.answers import (
    BreachReport,
    access_request,
    breach_impact,
    erasure_plan,
    retention_register,
    transfers_register,
)
from lineage.answers.policy_check import check
from lineage.console.limits import CASE_REFERENCE_CHARS, IDENTIFIER_CHARS, check_length
from lineage.contract.policy import Policy
from lineage.contract.taxonomy import Taxonomy
from lineage.errors import InvalidEventError, LineageError
from lineage.present.datamap import DataMap, build_map
from lineage.present.formats import Document
from lineage.present.reports import access_document, affected_csv, breach_document, links_fact, transfers_document
from lineage.store import Store

__all__ = ["BreachJob", "Service", "affected_csv", "check_case", "parse_when"]

_CASE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:#-]{0,63}")
_JOB_TTL_S = 3600.0


def check_case(case_ref: str | None) -> str:
    """A case reference (ticket, request number): required, and safe in a file name."""
    check_length("case_reference", case_ref, CASE_REFERENCE_CHARS)
    if not case_ref or not _CASE.fullmatch(case_ref):
        raise InvalidEventError(
            "case_reference", case_ref, "is required: 1 to 64 of A-Z a-z 0-9 . _ : # - (the request or ticket id)"
        )
    return case_ref


def parse_when(name: str, text: str | None) -> datetime | None:
    """An ISO 8601 time from a form or body; one without an offset is read as UTC (the forms say so)."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidEventError(name, text[:40], "is not an ISO 8601 time (e.g. 2026-05-01T08:00Z)") from None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    if not 1900 <= value.year <= 9999:
        raise InvalidEventError(name, text[:40], "must be between the years 1900 and 9999")
    return value


@dataclass
class BreachJob:
    """One breach query running in the background, visible to whoever started it."""

    id: str
    owner: str
    case_ref: str
    holders: list[str]
    started: float = field(default_factory=time.time)
    finished: float | None = None
    report: BreachReport | None = None
    error: str | None = None

    @property
    def status(self) -> str:
        """running, done or failed."""
        return "failed" if self.error else "done" if self.report is not None else "running"


class Service:
    """The store, the taxonomy and the declared policies, and the answers the console shows."""

    def __init__(self, store: Store, taxonomy: Taxonomy, policies: Sequence[Policy] = ()) -> None:
        """Answer from ``store`` (unpinned: each answer reads the newest snapshot)."""
        self.store = store
        self.taxonomy = taxonomy
        self.policies = list(policies)
        self._jobs: dict[str, BreachJob] = {}
        self._jobs_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="breach")

    def person(self, identifier: str, as_of: datetime | None = None) -> Document:
        """The access report and the erasure plan of the subject known by ``identifier``, as one document."""
        check_length("identifier", identifier, IDENTIFIER_CHARS)
        report = access_request(self.store, identifier, self.taxonomy, as_of)
        plan = erasure_plan(self.store, identifier, self.taxonomy, report.as_of)
        title, facts, tables = access_document(report)
        facts = {"holds_data": report.holds_data, **facts, "erasure_complete": plan.complete,
                 "erasure_rule": plan.rule, "erasure_links": links_fact(plan.links)}  # fmt: skip
        return title, facts, {**tables, "erasure_plan": plan.holders}

    def holders(self) -> list[str]:
        """Every holder in the store, for the breach page's picker."""
        return sorted(r["name"] for r in self.store.rows("holders"))

    def start_breach(
        self, owner: str, case_ref: str, holders: list[str], t1: datetime, t2: datetime, aware: datetime | None
    ) -> BreachJob:
        """Start a breach query in the background; its job (poll ``job``)."""
        if not holders:
            raise InvalidEventError("holders", holders, "pick at least one compromised holder")
        if t1 > t2:
            raise InvalidEventError("from", t1.isoformat(), f"is after to {t2.isoformat()}")
        job = BreachJob(secrets.token_urlsafe(16), owner, case_ref, holders)
        with self._jobs_lock:
            now = time.time()
            for old in [j for j in self._jobs.values() if j.finished and now - j.finished > _JOB_TTL_S]:
                del self._jobs[old.id]
            self._jobs[job.id] = job
        self._pool.submit(self._run, job, t1, t2, aware)
        return job

    def _run(self, job: BreachJob, t1: datetime, t2: datetime, aware: datetime | None) -> None:
        try:
            job.report = breach_impact(self.store, job.holders, t1, t2, self.taxonomy, aware_at=aware)
        except LineageError as exc:
            job.error = str(exc).splitlines()[0]
        except Exception as exc:  # a bug: its type only (the message may hold data)
            job.error = f"internal error ({type(exc).__name__})"
        job.finished = time.time()

    def job(self, owner: str, job_id: str) -> BreachJob | None:
        """A job, only for the user who started it."""
        with self._jobs_lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.owner == owner else None

    def registers(self) -> dict[str, Any]:
        """Transfers, retention, policy violations per organisation, and the ROPA when its module is there."""
        transfers = transfers_document(transfers_register(self.store, self.taxonomy))
        retention = retention_register(self.store)
        violations = {p.name: [dataclasses.asdict(v) for v in check(self.store, p)] for p in self.policies}
        return {"transfers": transfers, "retention": retention, "violations": violations, "ropa": self._ropa()}

    def _ropa(self) -> Any:
        try:  # built on another branch: shown when it has landed
            module = importlib.import_module("lineage.answers.ropa")
        except ImportError:
            return None
        return module.ropa(self.store, self.taxonomy)

    def datamap(self) -> DataMap:
        """The data map, with the declared policies' violations pinned on it."""
        found = {p.name: check(self.store, p) for p in self.policies}
        return build_map(self.store, self.taxonomy, self.policies, found)

    def close(self) -> None:
        """Stop taking jobs; wait for running ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def breach_summary(job: BreachJob) -> Document:
    """A finished job's report as a document (counts and plan; the people are in the download)."""
    assert job.report is not None
    return breach_document(job.report)
