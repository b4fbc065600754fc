"""What the console asks, shared by its pages and their JSON twins; breach queries run as jobs.

Every answer comes from ``lineage.service``, stamped like the command line's: this module adds the
console's own rules (length caps, the jobs and their caps, the audit key) and nothing to the answers.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lineage.answers import BreachReport
from lineage.answers.forget import case_ref_checked, erased, forget_person, kafka_copies
from lineage.console import kept as kept_registers
from lineage.console.db import ConsoleDB, Tx, hashed_subject
from lineage.console.limits import CASE_REFERENCE_CHARS, IDENTIFIER_CHARS, check_length
from lineage.contract.law import INDICATIVE
from lineage.contract.policy import Policy
from lineage.contract.taxonomy import Taxonomy, suggest
from lineage.contract.times import Bare, parse_time
from lineage.errors import InvalidEventError, LineageError, UnknownValueError
from lineage.ingest.holdings import HoldingsMaintainer
from lineage.present.formats import Document, csv_cell, json_values
from lineage.service import answers
from lineage.service.answers import Map
from lineage.service.read import STAMP_FACTS, hold, stamp_of
from lineage.settings import Settings
from lineage.store import Store
from lineage.store.certificate import Certificate, made_since, unfinished
from lineage.store.snapshots import only_appended

__all__ = [
    "DEFAULT_TOPICS",
    "MAX_JOBS",
    "MAX_JOBS_PER_USER",
    "BreachBusy",
    "BreachJob",
    "Service",
    "check_case",
    "parse_when",
    "parse_window",
]

_log = logging.getLogger("lineage.console.service")

# the read registers come from: the events and holdings snapshots, and the erasure certificates' version
_Read = tuple[int | None, int | None, str | None]
# registers kept in memory: the read they came from, when (monotonic), and them
_Kept = tuple[_Read, float, dict[str, Any]]

#: the events and dead-letter topics a console's erasure certificates name unless told (the settings' defaults)
DEFAULT_TOPICS = (Settings().topic, Settings().dead_letter_topic)

#: how long the registers of one read are shown again without being computed anew (seconds): they
#: take ~15 s at 1M subjects, and every page, sort, filter and download of the registers page asks
#: for them; the retention register is judged at the time they were computed, which the stamp shows
REGISTERS_KEPT_S = 300.0
#: a claim on computing the registers ahead (``warm_registers``) older than this is taken over: its
#: process was killed midway (they take ~20 s at 1M subjects)
WARM_CLAIM_S = 600.0


def check_case(case_ref: str | None) -> str:
    """A case reference (ticket, request number): required, and safe in a file name (``lineage forget``'s rule)."""
    check_length("case_reference", case_ref, CASE_REFERENCE_CHARS)
    return case_ref_checked(case_ref)


def parse_when(name: str, text: str | None) -> datetime | None:
    """A time from a form or body (blank: not given); the console reads one without an offset as UTC.

    The forms' ``datetime-local`` inputs send no offset and are labelled UTC; the API's fields say so.
    ``lineage.contract.times.parse_time`` is the one parser; this is the console's rule for it.
    """
    return parse_time(name, text or None, bare=Bare.UTC)


def parse_window(start_field: str, start: str | None, end_field: str, end: str | None) -> tuple[datetime, datetime]:
    """A breach window from a form or body: both ends required, each an ISO 8601 time (named as the caller names it)."""
    t1, t2 = parse_when(start_field, start), parse_when(end_field, end)
    if t1 is None or t2 is None:
        raise LineageError(f"{start_field}/{end_field}: both ends of the window are required")
    return t1, t2


#: breach queries accepted and not yet finished: per user (counted in the console database, so over
#: every worker and host) and in all per serving process (each holds its running queries' rows)
MAX_JOBS_PER_USER = 2
MAX_JOBS = 4
_BREACH_START_LOCK = 2_020_003  # the PostgreSQL advisory lock that orders job starts (any fixed number)
_AFFECTED_BATCH = 2000
_INTERRUPTED = "interrupted by a server restart: run it again"
_CLOCKS = timedelta(minutes=10)  # how far another host's clock may lag: a forget it stamps earlier still counts


class BreachBusy(LineageError):
    """Too many breach queries are already running: one line saying which limit, to retry later."""


@dataclass(frozen=True)
class BreachJob:
    """One breach assessment as kept in the console database: its query, status, summary and plan."""

    id: str
    owner: str
    case_ref: str
    holders: list[str]
    t1: str
    t2: str
    aware: str | None
    started: float
    finished: float | None
    status: str  # running, done or failed
    error: str | None
    records: int
    summary: Document | None
    plan: list[dict[str, Any]]

    @property
    def started_at(self) -> datetime:
        """When it was started."""
        return datetime.fromtimestamp(self.started, UTC)


class Service:
    """The store, the taxonomy and the declared policies, and the answers the console shows."""

    def __init__(
        self,
        store: Store,
        taxonomy: Taxonomy,
        policies: Sequence[Policy] = (),
        *,
        db: ConsoleDB,
        digest: Callable[[str], str] | None = None,
        topics: tuple[str, str] = DEFAULT_TOPICS,
    ) -> None:
        """Answer from ``store`` (unpinned: each answer reads the newest snapshot); keep breach assessments in ``db``.

        ``digest`` (the audit's keyed hash) finds the erasure certificate of a forgotten person;
        ``topics`` (events, dead letters) are named in the certificates of the people forgotten here.

        Assessments left running by a process of this host that has ended are marked failed: their
        thread is gone. Those of the other live processes (``lineage serve --workers``) run on.
        """
        self.store = store
        self.taxonomy = taxonomy
        self.policies = list(policies)
        self.db = db
        self._digest = digest
        self._topics = topics
        self._host = socket.gethostname()[:80]
        self._runner = f"{self._host}:{os.getpid()}"  # which process runs a job: only it can finish it
        self._running: dict[str, str] = {}  # job id -> owner, accepted and not finished
        self._jobs_lock = threading.Lock()
        # two at once on the machine's cores; the rest of the MAX_JOBS accepted wait their turn in the pool
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="breach")
        # the last registers computed: the read they came from, when (monotonic), and the answer
        self._registers: _Kept | None = None
        self._registers_lock = threading.Lock()  # guards the three below, never held while computing
        self._computing = threading.Lock()  # one computation at a time: a later one reads a newer state
        self._loading = threading.Lock()  # one reading of the registers kept in the database at a time
        self._unsure: tuple[_Read, dict[str, Any]] | None = None  # the last ones not kept, and their read
        self._registers_epoch = 0  # moved by a forget: a computation begun before it is not kept
        self._renewing: Future[Any] | None = None  # the newer registers being computed behind the kept ones
        self._renew_failed: str | None = None  # why the last computation behind the kept ones failed
        self._renewer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="registers")
        self._warm = False  # whether registers are computed ahead of any view (``warm_registers``)
        self._closing = threading.Event()  # set by ``close``: a computation in the background gives up
        self._claimant = secrets.token_hex(8)  # this process's name on a claim to compute them ahead
        # the key of theirs kept in the database
        self._registers_key = kept_registers.fingerprint(store.location.describe(), taxonomy, self.policies)
        self._fail_orphans()

    def _fail_orphans(self) -> None:
        """Mark failed the running jobs of this host's ended processes (a worker restarted, or the server).

        A process id used again by a new process before this check leaves its job shown running
        until the next start finds that process ended too.
        """
        with self.db.tx() as tx:
            running = tx.rows("SELECT id, runner FROM console_breaches WHERE status = 'running'")
            for job in running:
                host, _, pid = job["runner"].rpartition(":")
                if job["runner"] == self._host or (host == self._host and not _process_alive(pid)):
                    _fail(tx, job["id"], _INTERRUPTED, None)

    def person(self, identifier: str, as_of: datetime | None = None) -> Document:
        """The access report and the erasure plan of the subject known by ``identifier``, as one stamped document.

        A forgotten person (``lineage forget``) gets the certificate's date and case, and nothing more.
        """
        check_length("identifier", identifier, IDENTIFIER_CHARS)
        return answers.person(self.store, identifier, self.taxonomy, as_of, digest=self._digest)

    def access(self, identifier: str, as_of: datetime | None = None, *, links_as_known_then: bool = False) -> Document:
        """The access report alone, as ``lineage access`` gives it (the command asks it of a running console)."""
        check_length("identifier", identifier, IDENTIFIER_CHARS)
        return answers.access(self.store, identifier, self.taxonomy, as_of, links_as_known_then=links_as_known_then,
                              digest=self._digest, option="--as-of")  # fmt: skip

    def erasure(self, identifier: str, as_of: datetime | None = None, *, links_as_known_then: bool = False) -> Document:
        """The erasure plan alone, as ``lineage erasure`` gives it (the command asks it of a running console)."""
        check_length("identifier", identifier, IDENTIFIER_CHARS)
        return answers.erasure(self.store, identifier, self.taxonomy, as_of, links_as_known_then=links_as_known_then,
                               option="--as-of")  # fmt: skip

    def forget(self, identifiers: Sequence[str], case_ref: str) -> list[Certificate]:
        """Forget the person known by ``identifiers`` from the store (``lineage forget``); a certificate per identifier.

        The console database is the caller's to redact (``lineage.console.erasure``): it knows who asked.
        """
        if self._digest is None:
            raise InvalidEventError("identifiers", "", "this console keeps no audit key to certify an erasure with")
        for identifier in identifiers:
            check_length("identifier", identifier, IDENTIFIER_CHARS)
        try:
            return forget_person(
                self.store, identifiers, case_ref=case_ref, digest=self._digest,
                kafka_bound=kafka_copies(*self._topics),
                refresh_holdings=HoldingsMaintainer(self.store.location, threads=self.store.threads).refresh,
            )  # fmt: skip
        finally:
            self.forget_registers()  # they may count or name the person: computed anew from the store as it is now

    def erasure_of(self, identifier: str) -> Certificate | None:
        """The certificate that makes ``identifier`` forgotten now (``erased``), if any (None without an audit key)."""
        return None if self._digest is None else erased(self.store, identifier, self._digest)

    def forgotten(self) -> None:
        """A forget through the console has ended (store and console database): registers computed ahead again."""
        if self._warm:
            self.warm_registers()

    def regimes(self, jurisdiction: object) -> list[str]:
        """The privacy regimes of a subject's jurisdiction (an access report's ``jurisdiction`` fact)."""
        region = self.taxonomy.regions.get(jurisdiction) if isinstance(jurisdiction, str) else None
        return list(region.regimes) if region else []

    def holders(self) -> list[str]:
        """Every holder in the store, for the breach page's picker."""
        return sorted(r["name"] for r in self.store.rows("holders"))

    def start_breach(
        self, owner: str, case_ref: str, holders: list[str], t1: datetime, t2: datetime, aware: datetime | None
    ) -> BreachJob:
        """Keep a new breach assessment and run it in the background (poll ``job``); refused past the caps.

        Refused rather than queued: a refusal tells the responder at once, while a queue would hold
        requests nobody watches, lost on a restart; the caps keep memory bounded (each running query
        holds its rows until they are written to the database).
        """
        if not holders:
            raise InvalidEventError("holders", holders, "pick at least one compromised holder")
        known = self.holders()
        for holder in holders:  # checked before the job is kept: an unknown (or 1 MB) name never reaches the table
            if holder not in known:
                raise UnknownValueError("holders", holder, "holder", suggest(holder[:100], known))
        holders = list(dict.fromkeys(holders))
        if t1 > t2:
            raise InvalidEventError("from", t1.isoformat(), f"is after to {t2.isoformat()}")
        job_id = secrets.token_urlsafe(16)
        with self._jobs_lock:
            self._keep_new(job_id, owner, case_ref, holders, t1, t2, aware)
            self._running[job_id] = owner
        try:
            self._pool.submit(self._run, job_id, holders, t1, t2, aware)
        except BaseException:  # shutting down: the row must not stay running (it counts against the cap)
            with self._jobs_lock:
                self._running.pop(job_id, None)
            with self.db.tx() as tx:
                tx.run("UPDATE console_breaches SET status = 'failed', error = :e WHERE id = :id",
                       {"e": _INTERRUPTED, "id": job_id})  # fmt: skip
            raise
        job = self.job(owner, job_id)
        assert job is not None
        return job

    def _keep_new(
        self, job_id: str, owner: str, case_ref: str, holders: list[str], t1: datetime, t2: datetime,
        aware: datetime | None,
    ) -> None:
        """Insert the job as running, unless it would pass the owner's cap or this process's; then keep nothing.

        The owner's running jobs are counted in the database: every worker's and every host's. The
        row goes in first: on SQLite that takes the database's one write lock (on PostgreSQL an
        advisory lock does), so two workers starting jobs at once count one after the other.
        """
        with self.db.tx() as tx:
            if self.db.kind == "postgresql":
                tx.run("SELECT pg_advisory_xact_lock(:key)", {"key": _BREACH_START_LOCK})
            tx.run(
                "INSERT INTO console_breaches (id, owner, case_ref, holders, t1, t2, aware, runner, started, "
                "status) VALUES (:id, :owner, :case, :holders, :t1, :t2, :aware, :runner, :started, 'running')",
                {"id": job_id, "owner": owner, "case": case_ref, "holders": json.dumps(holders),
                 "t1": t1.isoformat(), "t2": t2.isoformat(), "aware": aware.isoformat() if aware else None,
                 "runner": self._runner, "started": time.time()},
            )  # fmt: skip
            mine = tx.one("SELECT count(*) AS n FROM console_breaches WHERE owner = :o AND status = 'running'",
                          {"o": owner})  # fmt: skip
            if mine is not None and int(mine["n"]) > MAX_JOBS_PER_USER:  # raising rolls the insert back
                raise BreachBusy(f"breach: you already have {MAX_JOBS_PER_USER} queries running; wait for one to end")
            if len(self._running) >= MAX_JOBS:
                raise BreachBusy(f"breach: {MAX_JOBS} queries are already running; try again in a few minutes")

    def _run(self, job_id: str, holders: list[str], t1: datetime, t2: datetime, aware: datetime | None) -> None:
        error: str | None = None
        try:
            forgotten = _Forgotten(self.store, self._digest)  # before the answer's read
            self._keep(job_id, *answers.breach(self.store, holders, t1, t2, self.taxonomy, aware=aware), forgotten)
        except LineageError as exc:
            error = str(exc).splitlines()[0]
        except Exception as exc:  # a bug: its type only (the message may hold data)
            error = f"internal error ({type(exc).__name__})"
        try:
            if error is not None:
                with self.db.tx() as tx:
                    _fail(tx, job_id, error, time.time())
        finally:
            with self._jobs_lock:
                self._running.pop(job_id, None)

    def _keep(self, job_id: str, doc: Document, report: BreachReport, forgotten: _Forgotten | None = None) -> None:
        """Write the affected list a batch a transaction, then the (stamped) summary and plan; the report goes after.

        On SQLite a transaction holds the database's one write lock, and every page's audit entry
        waits for it: the list of 100,000 people in one transaction (1.6-1.9 s, measured) held each
        page that long. A batch's is ~40 ms. Until the last transaction marks the job done its rows
        are shown nowhere; a job that fails, or that another process failed meanwhile (it took this
        process for ended), has them removed (``_fail``).

        ``forgotten`` (made before the answer's read): the people a forget named since are written
        by keyed hash, as that forget's redaction leaves them (``lineage.console.erasure``), since a
        redaction run before these rows were written would not find them. The certificates are read
        again after the last batch; a forget that begins later writes its certificate after every
        batch was committed, so its redaction finds them all.
        """
        summary = _as_json(doc)
        forgotten = forgotten or _Forgotten(self.store, self._digest)
        forgotten.refresh()
        for at in range(0, len(report.records), _AFFECTED_BATCH):
            batch = report.records[at : at + _AFFECTED_BATCH]
            with self.db.tx() as tx:
                if not _still_running(tx, job_id):
                    break
                tx.run_many(
                    "INSERT INTO console_breach_affected (breach_id, seq, subject, jurisdiction, age_band, category, "
                    "holder, reached_at, encrypted) VALUES (:id, :seq, :subject, :jurisdiction, :age_band, "
                    ":category, :holder, :reached_at, :encrypted)",
                    [{"id": job_id, "seq": at + i, "subject": forgotten.written(r["subject"]),
                      "jurisdiction": r["jurisdiction"], "age_band": r["age_band"], "category": r["category"],
                      "holder": r["holder"], "reached_at": r["reached_at"].isoformat(),
                      "encrypted": int(bool(r["encrypted"]))}
                     for i, r in enumerate(batch)],
                )  # fmt: skip
        hashed = forgotten.since()  # a forget began while the batches were written
        with self.db.tx() as tx:
            for subject, to in hashed:
                tx.run("UPDATE console_breach_affected SET subject = :to WHERE breach_id = :id AND subject = :s",
                       {"to": to, "id": job_id, "s": subject})  # fmt: skip
            done = tx.run(
                "UPDATE console_breaches SET status = 'done', finished = :f, records = :n, summary = :s, plan = :p "
                "WHERE id = :id AND status = 'running'",
                {"f": time.time(), "n": len(report.records), "s": json.dumps(summary),
                 "p": json.dumps(summary["tables"]["notification_plan"]), "id": job_id},
            )  # fmt: skip
            if not done:  # failed by another process meanwhile: none of its people stay
                _fail(tx, job_id, _INTERRUPTED, None)
        if hashed:  # the identifiers replaced leave no bytes behind, as the redaction's own (``reclaim``)
            self.db.reclaim(("console_breach_affected",))

    def job(self, owner: str, job_id: str) -> BreachJob | None:
        """A kept assessment, only for the user who started it."""
        with self.db.tx() as tx:
            row = tx.one("SELECT * FROM console_breaches WHERE id = :id AND owner = :o", {"id": job_id, "o": owner})
        return None if row is None else _job(row)

    def jobs(self, owner: str) -> list[BreachJob]:
        """The user's kept assessments, newest first (at most 200)."""
        with self.db.tx() as tx:
            rows = tx.rows("SELECT * FROM console_breaches WHERE owner = :o ORDER BY started DESC LIMIT 200",
                           {"o": owner})  # fmt: skip
        return [_job(r) for r in rows]

    def affected_csv(self, job_id: str) -> Iterator[str]:
        """The affected list as CSV text, read from the database a batch at a time (never all in memory)."""
        yield _csv_line(["subject", "jurisdiction", "age_band", "category", "holder", "reached_at", "encrypted"])
        after = -1
        while True:
            with self.db.tx() as tx:
                rows = tx.rows(
                    "SELECT seq, subject, jurisdiction, age_band, category, holder, reached_at, encrypted "
                    "FROM console_breach_affected WHERE breach_id = :id AND seq > :after ORDER BY seq LIMIT :n",
                    {"id": job_id, "after": after, "n": _AFFECTED_BATCH},
                )
            if not rows:
                return
            yield "".join(
                _csv_line([r["subject"], r["jurisdiction"] or "", r["age_band"], r["category"], r["holder"],
                           r["reached_at"], bool(r["encrypted"])])  # fmt: skip
                for r in rows
            )
            after = rows[-1]["seq"]

    def registers(self) -> dict[str, Any]:
        """Transfers, retention, policy violations per organisation and the ROPA, all from one held read.

        Each is its stamped document; ``stamp`` is the read's stamp (the same in each) for the page's head.
        They take ~20 s at 1M subjects, and a live store's read changes with every holdings refresh,
        so no one waits for them twice: when the store has only gained events since the kept ones
        were computed (or ``REGISTERS_KEPT_S`` has passed), they are shown at once, stamped with their
        own read and ``updating``, while one newer computation runs behind them. When rows were
        removed meanwhile (a forget, retention, compaction: perhaps a person's data) they are never
        shown again: the view waits for registers of the current read, as the first one does.
        """
        with self._registers_lock:
            kept = self._registers
        if kept is None:
            kept = self._registers_from_db()
        if kept is None:
            return self._fresh_registers()
        read = self._read_now()[1]
        if kept[0] == read and time.monotonic() - kept[1] < REGISTERS_KEPT_S:
            return kept[2]
        if self._gone_since(kept[0], read):
            self.forget_registers()  # what they show may be gone from the store
            return self._fresh_registers()
        return self._kept_while_renewing(kept[2])

    def _gone_since(self, kept: _Read, read: _Read) -> bool:
        """Whether rows may have left the store between the read ``kept`` and ``read`` (never shown again then).

        A forget began (perhaps only of holdings: retired events), or the events did more than gain rows.
        """
        return kept[2] != read[2] or (kept[0] != read[0] and not only_appended(self.store.location, kept[0], read[0]))

    def warm_registers(self) -> None:
        """Compute the registers ahead of any view whenever none are kept: at start, and after each forget.

        They take ~20 s at 1M subjects, and every later view shows the kept ones at once (``registers``),
        so only the first view after a start or a forget waited. ``lineage serve`` calls this as it
        starts (``forgotten`` after a forget); of its workers, the one that claims the computation in
        the console database computes them (``kept.claim``), and the others show what it keeps. A
        view of this process arriving meanwhile waits for them rather than computing them again.
        ``close`` makes it give up between two of the registers.
        """
        self._warm = True
        with self._registers_lock:
            try:  # after a computation already under way, if any (one at a time): it finds them kept then
                self._renewing = self._renewer.submit(self._warm_up)
            except RuntimeError:  # closing
                pass

    def _warm_up(self) -> None:
        """``warm_registers``'s computation, when no registers are kept and no other process claims it."""
        if self._closing.is_set():
            return
        try:  # claimed first: workers starting together all see the same kept ones
            if not kept_registers.claim(self.db, self._registers_key, WARM_CLAIM_S, self._claimant):
                return  # another worker computes them
        except LineageError as exc:  # the database failed: the first view computes them
            _log.warning("registers: not computed ahead: %s", _first_line(exc))
            return
        try:
            kept = self._registers_from_db()
            if kept is not None:
                if not self._gone_since(kept[0], self._read_now()[1]):
                    return  # shown at once by the views' rule (newer ones computed behind them)
                self.forget_registers(claims=False)  # as a view would (never shown again), the claim kept
            with self._computing:
                with self._registers_lock:
                    epoch, kept = self._registers_epoch, self._registers
                if kept is None:  # else a view computed them while this waited
                    self._compute_and_keep(epoch, stop=self._closing)
        except _Closing:
            pass
        except LineageError as exc:  # an empty store, say: the first view computes them (or says why)
            _log.warning("registers: not computed ahead: %s", _first_line(exc))
        except Exception as exc:  # a bug: its type only (the message may hold data)
            _log.error("registers: internal error (%s) computing them ahead", type(exc).__name__)
        finally:
            try:
                kept_registers.release(self.db, self._registers_key, self._claimant)
            except LineageError as exc:  # the claim goes stale and another start takes it over
                _log.warning("registers: could not release the claim: %s", _first_line(exc))

    def forget_registers(self, *, claims: bool = True) -> None:
        """Drop the kept registers, and any being computed from a read before now (after a forget).

        ``claims``: the claims to compute them ahead too (a forget's); not a warm-up's own drop.
        """
        with self._registers_lock:
            self._registers = None
            self._registers_epoch += 1
        try:  # another worker's too (it checks the store before showing its own: they are never shown)
            kept_registers.drop(self.db, claims=claims)
        except LineageError as exc:
            _log.warning("registers: could not delete the kept ones: %s", _first_line(exc))

    def _registers_from_db(self) -> _Kept | None:
        """Registers another process (a worker, the last start) computed, kept in memory now; None if none."""
        with self._loading:  # views arriving together read and decode them once
            with self._registers_lock:
                epoch, kept = self._registers_epoch, self._registers
            return kept if kept is not None else self._load_registers(epoch)

    def _load_registers(self, epoch: int) -> _Kept | None:
        """``_registers_from_db``'s reading (hold ``_loading``); kept unless a forget came since ``epoch``."""
        try:
            found = kept_registers.load(self.db, self._registers_key)
        except LineageError as exc:  # the database failed: computed here, as before they were kept there
            _log.warning("registers: could not read the kept ones: %s", _first_line(exc))
            return None
        if found is None:
            return None
        age = max(0.0, time.time() - found.computed)
        kept = (found.read, time.monotonic() - age, found.found)
        with self._registers_lock:
            if self._registers_epoch != epoch:  # a forget came meanwhile
                return None
            if self._registers is None:
                self._registers = kept
            return self._registers

    def _kept_while_renewing(self, found: dict[str, Any]) -> dict[str, Any]:
        """The kept registers, marked ``updating``, with one computation of newer ones started behind them."""
        with self._registers_lock:
            failed = self._renew_failed
            if self._renewing is None or self._renewing.done():
                try:
                    self._renewing = self._renewer.submit(self._renew_registers)
                except RuntimeError:  # closing: no new computation; the kept ones are still right to show
                    pass
        note = ("newer registers are being computed from the store's current read; reload in a while for them"
                if failed is None else f"newer registers could not be computed ({failed}); trying again")  # fmt: skip
        return {**found, "stamp": {**found["stamp"], "updating": note}}

    def _fresh_registers(self) -> dict[str, Any]:
        """Registers to show now: computed here, or by the computation this view waited behind."""
        with self._computing:
            with self._registers_lock:
                kept, epoch, unsure = self._registers, self._registers_epoch, self._unsure
            if kept is not None:  # computed while this view waited: shown, not computed again
                return kept[2]
            if unsure is not None and unsure[0] == self._read_now()[1]:
                return unsure[1]  # not kept, but of this very read: what computing them again would give
            return self._compute_and_keep(epoch)

    def _renew_registers(self) -> None:
        """Compute the registers of the current read behind the kept ones; a failure keeps them and is logged."""
        try:
            with self._computing:
                with self._registers_lock:
                    epoch = self._registers_epoch
                self._compute_and_keep(epoch, stop=self._closing)
            self._renew_failed = None
        except _Closing:
            pass
        except LineageError as exc:  # the store failed meanwhile: the next view tries again
            self._renew_failed = _first_line(exc)
            _log.warning("registers: could not compute newer ones: %s", self._renew_failed)
        except Exception as exc:  # a bug: its type only (the message may hold data), the old registers kept
            self._renew_failed = f"internal error ({type(exc).__name__})"
            _log.error("registers: internal error (%s) computing newer ones", type(exc).__name__)

    def _compute_and_keep(self, epoch: int, stop: threading.Event | None = None) -> dict[str, Any]:
        """The registers of the current read, kept unless a forget came since ``epoch`` (hold ``_computing``).

        ``stop`` set: ``_Closing`` is raised between two of the registers.
        """
        held, read = self._read_now()
        stored = self._registers_from_db_of(read)
        found = stored if stored is not None else self._compute_registers(held, stop)
        # a forget that began meanwhile (here or on another worker), or one begun and not finished (it
        # may be removing the person's rows under the read, or have been killed midway): they may
        # count the person, so they are shown to this view alone
        unchanged = stored is not None or (self.store.erasures_version() == read[2] and not self._forget_begun(read))
        with self._registers_lock:
            keep = self._registers_epoch == epoch and unchanged
            if keep:
                self._registers = (read, time.monotonic(), found)
            # not kept: shown again only to views of this exact read (while a forget runs, every view
            # would otherwise compute them anew, one after another)
            self._unsure = None if keep else (read, found)
        if keep and stored is None:
            self._save_registers(kept_registers.KeptRegisters(read, time.time(), found))
        return found

    def _forget_begun(self, read: _Read) -> bool:
        """Whether a forget has begun and not finished (a certificate 'started' is its newest)."""
        return read[2] is not None and unfinished(self.store.certificates())

    def _read_now(self) -> tuple[Store, _Read]:
        """The store held for the registers, and its read.

        The certificates' version is looked up first: a forget beginning as the store is held is
        then never taken as one that began before the read.
        """
        erasures = self.store.erasures_version()
        held = hold(self.store)
        return held, (held.snapshot_id, held.holdings_snapshot_id, erasures)

    def _registers_from_db_of(self, read: _Read) -> dict[str, Any] | None:
        """The kept registers in the database if another process computed them from ``read`` and lately."""
        try:
            found = kept_registers.load(self.db, self._registers_key)
        except LineageError:
            return None  # computed here; _registers_from_db says why on the next view that reads them
        fresh = found is not None and time.time() - found.computed < REGISTERS_KEPT_S
        return found.found if fresh and found is not None and found.read == read else None

    def _save_registers(self, kept: kept_registers.KeptRegisters) -> None:
        """Keep the registers in the database for the other workers and the next start (a failure is logged)."""
        try:
            kept_registers.save(self.db, self._registers_key, kept)
        except TypeError as exc:  # a value JSON cannot carry: kept in this process only
            _log.warning("registers: not kept in the console database (%s)", exc)
        except LineageError as exc:
            _log.warning("registers: not kept in the console database: %s", _first_line(exc))

    def _compute_registers(self, held: Store, stop: threading.Event | None = None) -> dict[str, Any]:
        """The registers of one held read (``registers`` keeps them); ``stop`` set: ``_Closing`` between two."""

        def step() -> None:
            if stop is not None and stop.is_set():
                raise _Closing

        step()
        transfers = answers.transfers(held, self.taxonomy)
        checks = {}
        for p in self.policies:
            step()
            checks[p.name] = answers.check(held, p, refuse_unseen=False)
        step()
        overdue = list(answers.retention(held)[2]["overdue"])
        step()
        return {"transfers": transfers, "retention": overdue,
                "violations": {name: list(doc[2]["violations"]) for name, doc in checks.items()},
                "ropa": answers.ropa(held, self.taxonomy), "stamp": stamp_of(held).facts()}  # fmt: skip

    def datamap(self) -> Map:
        """The data map, with the declared policies' violations pinned on it, and the stamp of its read."""
        return answers.data_map(self.store, self.taxonomy, self.policies)

    def close(self) -> None:
        """Stop taking jobs; wait for running ones (and for registers being computed: those ahead give up)."""
        self._closing.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._renewer.shutdown(wait=True, cancel_futures=True)


class _Forgotten:
    """Who a breach job writes by keyed hash: the people a forget named since its answer's read began.

    The redaction's own rule (every identifier a forget names, whatever its certificate says), for
    the forgets that may have run before the job's people were written; someone forgotten long
    before and collected again since is written in clear, as the store's answer names them. Hosts'
    clocks may differ: a forget stamped up to ``_CLOCKS`` before counts too. No cost while no
    forget comes (the certificates table's version alone is read), nor without an audit key.
    """

    def __init__(self, store: Store, digest: Callable[[str], str] | None) -> None:
        """Made before the job reads the store."""
        self._store, self._digest = store, digest
        self._version = store.erasures_version()
        self._since = datetime.now(UTC) - _CLOCKS
        self._named: frozenset[str] = frozenset()
        self._clear: set[str] = set()  # the identifiers written in clear

    def refresh(self) -> bool:
        """Read the certificates again if a forget came since they were last read; whether one did."""
        version = self._store.erasures_version()
        if self._digest is None or version == self._version:
            return False
        self._version = version
        self._named = made_since(self._store.certificates(), self._since)
        return True

    def written(self, subject: str | None) -> str | None:
        """``subject`` as the console database keeps it: its keyed hash, marked, when a forget named it."""
        if subject is None:
            return None
        if self._named and self._digest is not None and (hashed := self._digest(subject)) in self._named:
            return hashed_subject(hashed)
        self._clear.add(subject)
        return subject

    def since(self) -> list[tuple[str, str]]:
        """Each identifier written in clear that a forget begun since names, and what it becomes."""
        if not self.refresh() or self._digest is None:
            return []
        return [(s, hashed_subject(d)) for s in sorted(self._clear) if (d := self._digest(s)) in self._named]


def _still_running(tx: Tx, job_id: str) -> bool:
    """Whether the job is still running (another process may have failed it, taking this one for ended)."""
    row = tx.one("SELECT status FROM console_breaches WHERE id = :id", {"id": job_id})
    return row is not None and row["status"] == "running"


def _fail(tx: Tx, job_id: str, error: str, finished: float | None) -> None:
    """Mark a running job failed, and remove the affected rows it had written (``Service._keep``)."""
    tx.run("UPDATE console_breaches SET status = 'failed', error = :e, finished = :f WHERE id = :id "
           "AND status = 'running'", {"e": error, "f": finished, "id": job_id})  # fmt: skip
    tx.run("DELETE FROM console_breach_affected WHERE breach_id = :id AND NOT EXISTS "
           "(SELECT 1 FROM console_breaches WHERE id = :id AND status = 'done')", {"id": job_id})  # fmt: skip


class _Closing(Exception):
    """The console is closing: registers computed in the background give up."""


def _first_line(exc: BaseException) -> str:
    """An error's message's first line (its type's name if it has none), for one log line."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _process_alive(pid: str) -> bool:
    """Whether a process with this id runs on this host (one another user owns counts as running)."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def breach_summary(job: BreachJob) -> Document:
    """A finished assessment's summary as a document (counts and plan; the people are in the download)."""
    assert job.summary is not None
    return job.summary


def plan_document(job: BreachJob) -> Document:
    """A finished assessment's notification plan, with the query it answers and the stamp of its read, for download."""
    facts = {"case_reference": job.case_ref, "compromised": job.holders, "window": f"{job.t1} to {job.t2}",
             "note": INDICATIVE}  # fmt: skip
    kept = job.summary[1] if job.summary is not None else {}
    facts |= {k: v for k, v in kept.items() if k in STAMP_FACTS}
    return "Notification plan", facts, {"notification_plan": job.plan}


def _job(row: dict[str, Any]) -> BreachJob:
    kept = json.loads(row["summary"]) if row["summary"] else None
    summary = None if kept is None else (kept["title"], kept["facts"], kept["tables"])
    return BreachJob(id=row["id"], owner=row["owner"], case_ref=row["case_ref"], holders=json.loads(row["holders"]),
                     t1=row["t1"], t2=row["t2"], aware=row["aware"], started=float(row["started"]),
                     finished=None if row["finished"] is None else float(row["finished"]), status=row["status"],
                     error=row["error"], records=int(row["records"]), summary=summary,
                     plan=json.loads(row["plan"]) if row["plan"] else [])  # fmt: skip


def _as_json(doc: Document) -> dict[str, Any]:
    """A document as JSON values, its facts and tables apart (``render`` makes the values plain)."""
    title, facts, tables = doc
    return {"title": title, "facts": json_values(facts), "tables": json_values(tables)}


def _csv_line(values: list[object]) -> str:
    """One CSV row, every cell spreadsheet-safe by the one rule in ``present.formats``."""
    out = io.StringIO()
    csv.writer(out).writerow([csv_cell(v) for v in values])
    return out.getvalue()
