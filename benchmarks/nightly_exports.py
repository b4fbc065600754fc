"""The nightly-exports world of issue 12: lineage's answers beside a plain replay of the log, same run.

An app (DE) collects each person (contact and device; a tenth also a coarse location; collection
times spread over the first weeks; a fifth with a second identifier linked); every night it sends a
BULK export of everything it holds to an analytics processor (US), selection taken a few minutes
before the send, which forwards a weekly BULK transfer to an ad sub-processor (SG). 5% of people are
erased at the app at random times (subject-level). Events go into the store through the ingest
pipeline (``Ingestor``, the backfill's path) in large commits, then the store is compacted.

Measured, each lineage answer in a fresh process (wall time of the call, and the process's peak RSS),
stopped past a timeout or a memory limit: breach at the sub-processor and at the partner (a window
of a month near the end), one access request (by a linked identifier of an erased person) and the
retention register; and the holdings build (``HoldingsMaintainer.refresh``: "holdings build", run
right after ingest).
The baseline: every event read back from the store (timed on its own), then replayed in event-time
order in plain Python keeping what each holder holds, answering the same four questions. Both must
agree (set-equal breach pairs, equal retention rows, equal access holdings); a mismatch is loud.

    ./run bench nightly_exports [--people 1000 5000 20000] [--years 1] [--timeout 600] [--max-gb 16]
    ./run bench nightly_exports --check        # 1,000 people: equality only
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's lineage, in this process and (PYTHONPATH) in each child

from lineage import default_taxonomy  # noqa: E402
from lineage.answers import access_request, breach_impact, retention_register  # noqa: E402
from lineage.contract.events import Party  # noqa: E402
from lineage.contract.records import Record, make_record  # noqa: E402
from lineage.errors import LineageError  # noqa: E402
from lineage.ingest.pipeline import Ingestor  # noqa: E402
from lineage.private import private_dir  # noqa: E402
from lineage.store import Store, StoreLocation  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
DAY_US = 86_400 * 1_000_000
COMMIT_ROWS = 200_000  # events per commit: large commits, as a backfill makes them

APP = Party(name="app", role="internal", region="DE")
PARTNER = Party(name="analytics", role="processor", region="US")
SUBPROCESSOR = Party(name="adnet", role="sub_processor", region="SG")
CONTACT = ["user.contact.email", "user.device.device_id"]
LOCATION = ["user.location.coarse"]
NIGHTLY = ["user.contact", "user.device", "user.location"]
WEEKLY = ["user.device", "user.location"]
ERASE_ALL = ["user.contact", "user.device", "user.location"]
_ENDING = ("ERASED", "ANONYMISED")  # erasure outcomes that end a holding (a HOLD does not)


class ReplayError(LineageError):
    """The log holds something this plain replay does not model (it refuses rather than guess)."""


def us(at: datetime) -> int:
    """UTC microseconds since the epoch."""
    return (at - _EPOCH) // _US


# -- the world ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """The world's size and the times the questions are asked at."""

    people: int
    years: int = 1
    seed: int = 12

    @property
    def end(self) -> datetime:
        """The end of the history: every question is asked at or before it."""
        return START + timedelta(days=365 * self.years)

    @property
    def breach_window(self) -> tuple[datetime, datetime]:
        """A month near the end (the last five days left out, so later erasures must not count)."""
        return self.end - timedelta(days=35), self.end - timedelta(days=5)


def person(i: int) -> str:
    """The app's identifier of person ``i``."""
    return f"p{i:07d}"


def device(i: int) -> str:
    """Person ``i``'s second identifier, linked to the first on their events."""
    return f"d{i:07d}"


def generate(world: World) -> tuple[list[Record], str]:
    """Every event of the world as records, in time order; and the identifier to ask an access request by."""
    rng = random.Random(world.seed)
    out: list[tuple[datetime, Record]] = []
    about = {"subject_jurisdiction": "DE", "age_band": "ADULT"}

    def app(kind: str, at: datetime, **fields: Any) -> None:
        out.append((at, make_record(kind, system="app", system_region="DE", occurred_at=at, **fields)))

    asked: str | None = None
    fallback = person(0)  # a tiny world may have no erased person with a link: a linked one, or the first
    weeks = timedelta(days=28)
    for i in range(world.people):
        links = [device(i)] if rng.random() < 0.2 else []
        if links and fallback == person(0):
            fallback = links[0]
        at = START + rng.random() * weeks
        last = at
        app("COLLECTED", at, subject_id=person(i), linked_subject_ids=links, categories=CONTACT,
            purpose="essential.service", legal_basis="CONTRACT", retention_days=400, **about)  # fmt: skip
        if rng.random() < 0.1:
            last = START + rng.random() * 2 * weeks
            app("COLLECTED", last, subject_id=person(i), categories=LOCATION, purpose="essential.service",
                legal_basis="CONTRACT", retention_days=90, **about)  # fmt: skip
        if rng.random() < 0.05:
            erased = last + rng.random() * (world.end - last - timedelta(hours=1))
            app("ERASED", erased, subject_id=person(i), linked_subject_ids=links, categories=ERASE_ALL,
                erasure_outcome="ERASED", **about)  # fmt: skip
            if links and asked is None:
                asked = links[0]  # an erased person asked by their second identifier: links and erasure both count
    for day in range(365 * world.years):
        sent = START + timedelta(days=day, hours=2)
        app("TRANSFERRED", sent, bulk_as_of=sent - timedelta(minutes=5), categories=NIGHTLY, recipient=PARTNER,
            purpose="analytics.reporting", transfer_kind="CROSS_BORDER", mechanism="gdpr.scc",
            retention_days=30)  # fmt: skip
        if day % 7 == 6:
            sent += timedelta(hours=2)
            record = make_record(
                "TRANSFERRED", system="analytics", system_region="US", occurred_at=sent, holder=PARTNER,
                bulk_as_of=sent - timedelta(minutes=10), categories=WEEKLY, recipient=SUBPROCESSOR,
                purpose="marketing.advertising", transfer_kind="CROSS_BORDER", mechanism="contract.dpa",
                retention_days=60,
            )  # fmt: skip
            out.append((sent, record))
    out.sort(key=lambda e: e[0])
    return [r for _, r in out], asked or fallback


def ingest(records: list[Record], location: StoreLocation) -> None:
    """Store the records through the ingest pipeline in large commits, then compact the table."""
    ingestor = Ingestor(location, "bench.nightly", taxonomy=default_taxonomy(), member="backfill")
    for offset, record in enumerate(records):
        letter = ingestor.add_record(0, offset, record)
        if letter is not None:
            raise ReplayError(f"the generator made an invalid event: {letter.reason}")
        if ingestor.buffered_messages >= COMMIT_ROWS:
            ingestor.flush()
    ingestor.flush()
    Store(location).compact()


# -- the questions and their answers, in one plain shape ---------------------------------------


@dataclass(frozen=True)
class Questions:
    """What both sides answer: two breaches in one window, an access request, the retention register."""

    t1: int
    t2: int
    now: int
    identifier: str
    nodes: tuple[str, ...] = (SUBPROCESSOR.name, PARTNER.name)

    @classmethod
    def of(cls, world: World, identifier: str) -> Questions:
        """The questions asked of ``world``."""
        t1, t2 = world.breach_window
        return cls(us(t1), us(t2), us(world.end), identifier)


Pair = tuple[str, str]
Holding = tuple[str, str, int, bool, int | None]  # category, holder, since, still held, erased at
RetentionLine = tuple[str, str, int, int, int]  # holder, category, subjects, retention days, overdue since


@dataclass
class Answers:
    """Both breaches' (subject, category) pairs, the access request's holdings, the retention rows."""

    breach: dict[str, set[Pair]] = field(default_factory=dict)
    access: set[Holding] = field(default_factory=set)
    retention: list[RetentionLine] = field(default_factory=list)


def _when(at: datetime | None) -> int | None:
    return None if at is None else us(at)


def ask(store: Store, kind: str, q: Questions) -> Any:
    """One answer from lineage's public API, as plain JSON-able values."""
    return plain(kind, answer(store, kind, q))


def answer(store: Store, kind: str, q: Questions) -> Any:
    """One answer from lineage's public API, as it returns it (what is timed)."""
    taxonomy = default_taxonomy()
    at = datetime.fromtimestamp(q.now / 1e6, UTC)
    if kind in q.nodes:
        t1, t2 = (datetime.fromtimestamp(t / 1e6, UTC) for t in (q.t1, q.t2))
        return breach_impact(store, [kind], t1, t2, taxonomy, aware_at=t2)
    if kind == "access":
        return access_request(store, q.identifier, taxonomy, at)
    if kind == "retention":
        return retention_register(store, at)
    raise ValueError(kind)


def plain(kind: str, found: Any) -> Any:
    """An answer as plain JSON-able values, for comparing with the replay (not timed)."""
    if kind == "access":
        return sorted(
            (h["category"], h["holder"], us(h["since"]), h["still_held"], _when(h["erased_at"])) for h in found.holdings
        )
    if kind == "retention":
        return [
            (r["holder"], r["category"], r["subjects"], r["retention_days"], us(r["overdue_since"])) for r in found
        ]
    return sorted({(r["subject"], r["category"]) for r in found.records})


def as_answers(found: dict[str, Any], q: Questions) -> Answers:
    """Answers from ``ask``'s values (as they come back from a child process's JSON)."""
    return Answers(
        breach={n: {(s, c) for s, c in found[n]} for n in q.nodes},
        access={(c, h, s, bool(held), e) for c, h, s, held, e in found["access"]},
        retention=[(h, c, n, d, o) for h, c, n, d, o in found["retention"]],
    )


def differences(ours: Answers, theirs: Answers) -> list[str]:
    """Each way the replay's answers differ from lineage's, in words (empty: they agree)."""
    out = []
    for node, pairs in theirs.breach.items():
        mine = ours.breach.get(node, set())
        if mine != pairs:
            out.append(f"breach at {node}: replay {len(mine):,} pairs, lineage {len(pairs):,} ({len(mine - pairs):,} "
                       f"only in the replay, {len(pairs - mine):,} only in lineage)")  # fmt: skip
    if ours.access != theirs.access:
        out.append(f"access request: replay {sorted(ours.access)} != lineage {sorted(theirs.access)}")
    if ours.retention != theirs.retention:
        out.append(f"retention register: replay {ours.retention} != lineage {theirs.retention}")
    return out


# -- the plain replay ---------------------------------------------------------------------------

Event = tuple[Any, ...]
_COLUMNS = (
    "event_type, subject_id, linked_subject_ids, categories, holder_name, recipient_name, "
    "epoch_us(occurred_at), epoch_us(bulk_as_of), erasure_outcome, retention_days"
)


def read_events(location: StoreLocation) -> list[Event]:
    """Every event's columns the replay needs, read from the store (times as microseconds)."""
    with Store(location).connect() as con:
        return con.sql(f"SELECT {_COLUMNS} FROM events").fetchall()  # noqa: S608 - constant text


def _covers(category: str, keys: Sequence[str]) -> bool:
    return any(category == k or category.startswith(k + ".") for k in keys)


Route = tuple[str, str, tuple[str, ...], int | None]  # a bulk export's holder, recipient, categories, retention


@dataclass(frozen=True, slots=True)
class Selection:
    """What a bulk export took, per category; where its source's ``added`` lists stood; recipient's erasures."""

    subjects: dict[str, set[str]]
    positions: dict[str, int]
    removals: int
    only_new: bool


@dataclass(frozen=True, slots=True)
class Delivered:
    """A route's last delivered selection: where its source's ``added`` lists stood; recipient's erasures."""

    positions: dict[str, int]
    removals: int


class Holdings:
    """What each holder holds, per category: open arrivals by retention period, first arrival, last end.

    ``open[holder][category][days]`` maps a subject to its earliest arrival with that retention
    period not yet ended by an erasure (``days`` None: no period); ``first`` is the first arrival
    ever (an access request's "since"); ``closed`` the erasure that ended a subject's last arrival.
    A re-export of what a holder already holds changes nothing: a bulk export takes only what its
    source gained since the route's last delivery (``added``, in order), unless something was erased
    at the recipient since (``removals``), when it takes everything the source holds.
    """

    def __init__(self) -> None:
        """Nothing held."""
        self.open: dict[str, dict[str, dict[int | None, dict[str, int]]]] = {}
        self.first: dict[str, dict[str, dict[str, int]]] = {}
        self.closed: dict[str, dict[str, dict[str, int]]] = {}
        self.added: dict[str, dict[str, list[str]]] = {}
        self.removals: dict[str, int] = {}
        self.delivered: dict[Route, Delivered] = {}

    def arrive(self, holder: str, category: str, subjects: set[str] | list[str], at: int, days: int | None) -> None:
        """``subjects``' data of ``category`` reaches ``holder`` at ``at``, kept ``days`` days."""
        bucket = self.open.setdefault(holder, {}).setdefault(category, {}).setdefault(days, {})
        fresh = [s for s in subjects if s not in bucket]  # not `subjects - bucket.keys()`: that walks every key
        if not fresh:
            return
        first = self.first.setdefault(holder, {}).setdefault(category, {})
        closed = self.closed.setdefault(holder, {}).setdefault(category, {})
        self.added.setdefault(holder, {}).setdefault(category, []).extend(fresh)
        for s in fresh:
            bucket[s] = at
            first.setdefault(s, at)
            closed.pop(s, None)

    def erase(self, holder: str, subject: str, keys: list[str], at: int) -> None:
        """The subject's data under ``keys`` at ``holder`` is erased at ``at``."""
        for category, buckets in self.open.get(holder, {}).items():
            if not _covers(category, keys):
                continue
            held = False
            for bucket in buckets.values():
                held = bucket.pop(subject, None) is not None or held
            if held:
                self.closed[holder][category][subject] = at
                self.removals[holder] = self.removals.get(holder, 0) + 1

    def select(self, route: Route) -> Selection:
        """What a bulk export on ``route`` takes now (see the class: maybe only what is new)."""
        holder, recipient, keys, _ = route
        categories = [c for c in self.open.get(holder, {}) if _covers(c, keys)]
        positions = {c: len(self.added[holder][c]) for c in categories}
        removals = self.removals.get(recipient, 0)
        last = self.delivered.get(route)
        if last is None or last.removals != removals:
            return Selection(self.holding(holder, keys), positions, removals, only_new=False)
        new = {}
        for c in categories:
            buckets = self.open[holder][c].values()
            new[c] = {s for s in self.added[holder][c][last.positions.get(c, 0) :] if any(s in b for b in buckets)}
        return Selection(new, positions, removals, only_new=True)

    def receive(self, route: Route, selection: Selection, at: int) -> None:
        """A bulk export's selection reaches its recipient at ``at``."""
        _, recipient, _, days = route
        removals = self.removals.get(recipient, 0)
        if selection.only_new and removals != selection.removals:
            raise ReplayError("an erasure at a bulk export's recipient between its selection and its arrival")
        for category, subjects in selection.subjects.items():
            self.arrive(recipient, category, subjects, at, days)
        self.delivered[route] = Delivered(selection.positions, removals)

    def holding(self, holder: str, keys: Sequence[str] | None) -> dict[str, set[str]]:
        """Who ``holder`` holds now, per category under ``keys`` (None: all; a copy: what a bulk export takes)."""
        return {
            category: set().union(*(b.keys() for b in buckets.values()))
            for category, buckets in self.open.get(holder, {}).items()
            if keys is None or _covers(category, keys)
        }

    def exposed(self, holder: str, t1: int) -> set[Pair]:
        """(subject, category) pairs held now, or held at some time at or after ``t1``."""
        pairs = {(s, c) for c, subjects in self.holding(holder, None).items() for s in subjects}
        for category, ended in self.closed.get(holder, {}).items():
            pairs |= {(s, category) for s, at in ended.items() if at >= t1}
        return pairs

    def overdue(self, now: int) -> list[RetentionLine]:
        """The retention register: per holder and category, open data past its period at ``now``."""
        rows = []
        for holder in sorted(self.open):
            for category in sorted(self.open[holder]):
                subjects: set[str] = set()
                longest, since = -1, None
                for days, bucket in self.open[holder][category].items():
                    if days is None:
                        continue
                    ends = [(s, at + days * DAY_US) for s, at in bucket.items() if at + days * DAY_US < now]
                    if ends:
                        subjects |= {s for s, _ in ends}
                        longest = max(longest, days)
                        earliest = min(e for _, e in ends)
                        since = earliest if since is None else min(since, earliest)
                if since is not None:
                    rows.append((holder, category, len(subjects), longest, since))
        return rows

    def of(self, ids: set[str]) -> set[Holding]:
        """An access request's holdings for a person known by ``ids``."""
        out: set[Holding] = set()
        for holder, categories in self.first.items():
            for category, first in categories.items():
                since = [first[i] for i in ids if i in first]
                if not since:
                    continue
                buckets = self.open[holder][category].values()
                held = any(i in b for b in buckets for i in ids)
                ended = [self.closed[holder][category][i] for i in ids if i in self.closed[holder][category]]
                out.add((category, holder, min(since), held, None if held else max(ended)))
        return out


def linked(events: list[Event], identifier: str) -> set[str]:
    """Every identifier linked to ``identifier`` by any event (links known now), itself included."""
    edges: dict[str, set[str]] = {}
    for e in events:
        for other in e[2] or ():
            edges.setdefault(e[1], set()).add(other)
            edges.setdefault(other, set()).add(e[1])
    known, frontier = {identifier}, [identifier]
    while frontier:
        found = {o for i in frontier for o in edges.get(i, ())} - known
        known |= found
        frontier = list(found)
    return known


_ARRIVE, _ERASE, _TAKE = 0, 1, 2  # at one instant: arrivals, then erasures (they end them), then bulk selections


def replay(events: list[Event], q: Questions) -> Answers:
    """Replay the log in event-time order and answer the questions (breaches when time passes ``t2``)."""
    timeline: list[tuple[int, int, int]] = []
    for i, (kind, subject, _, _, _, _, at, as_of, outcome, _) in enumerate(events):
        if kind in ("COLLECTED", "SHARED", "TRANSFERRED"):
            if subject is None:
                if as_of >= at:
                    raise ReplayError("a bulk event sent at or before its selection time: not modelled here")
                timeline.append((as_of, _TAKE, i))
            timeline.append((at, _ARRIVE, i))
        elif kind == "ERASED" and outcome in _ENDING:
            if subject is None:
                raise ReplayError("a bulk erasure: not modelled here")
            timeline.append((at, _ERASE, i))
    timeline.sort()
    gc.disable()  # millions of small containers and no cycles: the collector's passes would be pure cost
    try:
        state, breach = _play(events, timeline, q)
    finally:
        gc.enable()
    return Answers(breach, state.of(linked(events, q.identifier)), state.overdue(q.now))


def _play(
    events: list[Event], timeline: list[tuple[int, int, int]], q: Questions
) -> tuple[Holdings, dict[str, set[Pair]]]:
    """The holdings at ``q.now``, and both breaches' pairs taken on the way at ``q.t2``."""
    state, taken = Holdings(), {}
    breach: dict[str, set[Pair]] = {}
    for at, phase, i in timeline:
        if at > q.t2 and not breach:
            breach = {node: state.exposed(node, q.t1) for node in q.nodes}
        if at > q.now:
            break
        kind, subject, _, categories, holder, recipient, _, _, _, days = events[i]
        if phase == _TAKE:
            taken[i] = state.select((holder, recipient, tuple(categories), days))
        elif phase == _ERASE:
            state.erase(holder, subject, categories, at)
        elif subject is None:
            state.receive((holder, recipient, tuple(categories), days), taken.pop(i), at)
        else:
            where = holder if kind == "COLLECTED" else recipient
            for category in categories:
                state.arrive(where, category, [subject], at, days)
    return state, breach or {node: state.exposed(node, q.t1) for node in q.nodes}


# -- measuring, each answer in its own process ---------------------------------------------------


def holdings_refresh() -> Callable[[StoreLocation], Any]:
    """Bring the store's holdings table up to date (issue 12: answers read it)."""
    from lineage.ingest.holdings import HoldingsMaintainer

    return lambda location: HoldingsMaintainer(location).refresh()


def local(folder: Path) -> StoreLocation:
    """The embedded store in ``folder``."""
    return StoreLocation.embedded(folder)


@dataclass(frozen=True)
class Measured:
    """One answer's wall time and its process's peak RSS; None, and why, when it did not finish."""

    seconds: float | None
    peak_gb: float | None
    value: Any = None
    failed: str = "timeout"

    def cell(self) -> str:
        """For the table: "1.2 s 0.4 GB", or why there is no figure."""
        return self.failed if self.seconds is None else f"{self.seconds:.2f} s {self.peak_gb:.2f} GB"


def child(spec_file: Path) -> int:
    """In a fresh process: run one answer (or the holdings build), write time, peak RSS and the answer."""
    spec = json.loads(spec_file.read_text())
    location = local(Path(spec["store"]))
    start = time.perf_counter()
    if spec["kind"] == "holdings":
        holdings_refresh()(location)
        seconds, value = time.perf_counter() - start, None
    else:
        q = Questions(**{**spec["questions"], "nodes": tuple(spec["questions"]["nodes"])})
        found = answer(Store(location), spec["kind"], q)
        seconds = time.perf_counter() - start
        value = plain(spec["kind"], found)  # converted for the comparison after the clock stops
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux
    Path(spec["out"]).write_text(json.dumps({"seconds": seconds, "peak_gb": peak_kb / 2**20, "value": value}))
    return 0


@dataclass(frozen=True)
class Limits:
    """How long an answer may take and how much memory its process may hold before it is stopped."""

    timeout_s: float = 600.0
    max_gb: float = 16.0


def _rss_gb(pid: int) -> float:
    """A live process's resident memory (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    kb = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), "0")
    return int(kb) / 2**20


def in_child(kind: str, folder: Path, q: Questions, work: Path, limits: Limits) -> Measured:
    """Run ``kind`` in a fresh Python process; its figures, or why there are none (too slow, too big, killed).

    The process is stopped past ``limits``: on a shared machine an answer growing without bound
    would otherwise bring the kernel's OOM killer down on someone else's process.
    """
    spec, out, err = (work / f"{kind}.{name}" for name in ("spec.json", "out.json", "stderr"))
    spec.write_text(json.dumps({"kind": kind, "store": str(folder), "out": str(out), "questions": q.__dict__}))
    with err.open("w") as stderr:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, __file__, "--child", str(spec)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        start, failed = time.monotonic(), ""
        while proc.poll() is None:
            if time.monotonic() - start > limits.timeout_s:
                failed = "timeout"
            elif _rss_gb(proc.pid) > limits.max_gb:
                failed = f"over {limits.max_gb:g} GB"
            if failed:
                proc.kill()
                proc.wait()
                return Measured(None, None, failed=failed)
            time.sleep(0.2)
    if proc.returncode < 0:  # a signal: the kernel's OOM killer (9), or someone making room (15)
        return Measured(None, None, failed=f"killed (signal {-proc.returncode})")
    if proc.returncode != 0:
        raise ReplayError(f"{kind} failed in its process:\n{err.read_text()[-3000:]}")
    found = json.loads(out.read_text())
    return Measured(found["seconds"], found["peak_gb"], found["value"])


@dataclass
class Row:
    """One size's figures."""

    people: int
    years: int
    events: int = 0
    ingest_s: float = 0.0
    answers: dict[str, Measured] = field(default_factory=dict)
    read_s: float = 0.0
    replay_s: float = 0.0
    agree: str = "yes"


ASKED = (SUBPROCESSOR.name, PARTNER.name, "access", "retention")


def run(world: World, limits: Limits, *, check: bool = False, say: Callable[[str], None] = print) -> Row:
    """Make the world, store it, measure (or with ``check`` only compare) lineage and the replay."""
    row = Row(world.people, world.years)
    with tempfile.TemporaryDirectory(prefix="bench-nightly-") as tmp:
        work = private_dir(Path(tmp) / "work")
        folder = Path(tmp) / "store"
        start = time.perf_counter()
        records, identifier = generate(world)
        row.events = len(records)
        location = local(folder)
        ingest(records, location)
        del records
        row.ingest_s = time.perf_counter() - start
        say(f"  {world.people:,} people, {world.years} year(s): {row.events:,} events generated, stored and "
            f"compacted in {row.ingest_s:.1f} s")  # fmt: skip
        q = Questions.of(world, identifier)
        row.answers["holdings"] = in_child("holdings", folder, q, work, limits)
        say(f"  holdings build: {row.answers['holdings'].cell()}")
        for kind in ASKED:
            if check:
                store = Store(location)
                row.answers[kind] = Measured(0.0, 0.0, json.loads(json.dumps(ask(store, kind, q))))
                store.close()
            else:
                row.answers[kind] = in_child(kind, folder, q, work, limits)
                say(f"  {kind}: {row.answers[kind].cell()}")
        start = time.perf_counter()
        events = read_events(location)
        row.read_s = time.perf_counter() - start
        start = time.perf_counter()
        ours = replay(events, q)
        row.replay_s = time.perf_counter() - start
        say(f"  plain replay: read {row.read_s:.2f} s, replay and answers {row.replay_s:.2f} s")
    if any(row.answers[k].seconds is None for k in ASKED):
        row.agree = "not compared (an answer did not finish)"
        return row
    problems = differences(ours, as_answers({k: row.answers[k].value for k in ASKED}, q))
    if problems:
        row.agree = "NO"
        say("!! MISMATCH between the plain replay and lineage:\n!!   " + "\n!!   ".join(problems))
    return row


def table(rows: list[Row]) -> str:
    """The figures as the issue's table, and each answer's time over the replay's (read + replay + answers)."""
    lines = [
        "| people | years | events | breach at sub-processor | breach at partner | access | retention register "
        "| holdings build | plain replay: read + replay and answers | answers agree |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        build = r.answers["holdings"].cell() if "holdings" in r.answers else "(no lineage.holdings.refresh)"
        cells = " | ".join(r.answers[k].cell() for k in ASKED)
        lines.append(f"| {r.people:,} | {r.years} | {r.events:,} | {cells} | {build} "
                     f"| {r.read_s:.2f} + {r.replay_s:.2f} = {r.read_s + r.replay_s:.2f} s | {r.agree} |")  # fmt: skip
    lines += ["", "each answer's time / the plain replay's (read + replay + answers); goal: below 1", ""]
    for r in rows:
        base = r.read_s + r.replay_s
        ratios = ", ".join(
            f"{k} "
            + (r.answers[k].failed if r.answers[k].seconds is None else f"{(r.answers[k].seconds or 0) / base:.1f}x")
            for k in ASKED
        )
        lines.append(f"  {r.people:,} people, {r.years} year(s): {ratios}")
    return "\n".join(lines)


def sizes(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, nargs="+", default=[20_000], help="one or more sizes (default 20000)")
    parser.add_argument("--years", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per answer (default 600)")
    parser.add_argument("--max-gb", type=float, default=16.0, help="memory per answer's process (default 16 GB)")
    parser.add_argument("--check", action="store_true", help="1,000 people, answers compared only (no timings)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("people", "years", "timeout", "max_gb"):
        values = getattr(args, name)
        if any(v <= 0 for v in (values if isinstance(values, list) else [values])):
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def main() -> int:
    args = sizes()
    if args.child is not None:
        return child(args.child)
    if args.check:
        row = run(World(1000, args.years), Limits(args.timeout, args.max_gb), check=True)
        print(f"check, 1,000 people, {args.years} year(s), {row.events:,} events: answers agree: {row.agree}")
        return 0 if row.agree == "yes" else 1
    load = os.getloadavg()
    print(f"nightly exports; load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    try:
        rows = [run(World(n, args.years), Limits(args.timeout, args.max_gb)) for n in args.people]
    except LineageError as exc:
        print(f"nightly_exports: {exc}", file=sys.stderr)
        return 1
    print()
    print(table(rows))
    return 0 if all(r.agree != "NO" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
