"""The holdings engine: events in event-time order in, holdings as runs out, one pass, no I/O.

What the answers used to compute from the whole log at every question is kept here as state, updated
event by event:

- a subject-level collection, share or transfer starts a run of one arrival at its holder;
- an erasure (ERASED or ANONYMISED) ends every run it covers at its holder (a bulk erasure: the
  arrivals up to its ``bulk_as_of``, so a run is split when later arrivals of it survive);
- a bulk flow from A to B (one "flow": the same sender, recipient, categories and terms every night)
  carries every (subject, category) A held when its selection was taken. Each flow keeps a cursor in A's
  log of changes (a run starting is +1, ending is -1) and the number of A's live runs per pair at the
  cursor, so a re-export costs what changed at A since the last one, not what A holds: pairs that
  start being held open a run at B, pairs that stop being held close B's run at the previous event,
  and everything else is extended for free (an open run covers every later event of its flow).

Runs never span two calendar years (the transfer register counts people per year). Late events are
handled by ``rollback`` (undo everything from a time on) and replaying from there. Every change
``apply`` makes is written to an undo journal first (the last ``undo_limit`` entries, whole instants),
so a rollback costs what it undoes; one reaching back further than the journal rebuilds the state
from the runs instead, walking all of them.
The rules are those of ``tests/reference.py``'s brute force, which the tests hold this to.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from heapq import merge
from itertools import chain
from typing import Any

from lineage.contract.rules import covered
from lineage.holdings.model import Changes, Event, FlowEvent, FlowInfo, Key, Link, Provenance, Run
from lineage.process import paused_gc

__all__ = ["HoldingsEngine", "LateEventError", "flow_id"]

_ENDING = ("ERASED", "ANONYMISED")
_FLOWS = ("COLLECTED", "SHARED", "TRANSFERRED")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# the undo journal's entries: (op, ...) tuples, undone in reverse order (see ``HoldingsEngine._undo``)
#: runs started that ``take_changes`` names one by one; beyond, their subjects are rewritten whole
_ADDED_LIMIT = 1_000_000
_RUN_ADDED = 0  # (op, the runs list, run): appended to that list
_RUN_FIELDS = 1  # (op, run, last_seq, ended, ended_by) before they changed
_FLOW_ADDED = 2  # (op, flow id)
_FLOW_EVENT = 3  # (op, flow): an event appended to it
_MOVED = 4  # (op, flow, cursor, cursor_at, the counts it changed as they were)
_OPEN = 5  # (op, flow, key, the open run before, or None)
_OPEN_ALL = 6  # (op, flow, its open runs before they were replaced)
_PENDING = 7  # (op, flow, its pending set before it was replaced)
_PENDING_ADDED = 8  # (op, flow, key)
_EDGE = 9  # (op, pair, first declared before, or None)
_PARENT = 10  # (op, identifier, its parent before, or None)
_LOG_ADDED = 11  # (op, holder): its log made from its runs (they may hold runs split later: remade if needed)

_Undo = list[tuple[Any, ...]]


def _held(entry: tuple[Any, ...]) -> int:
    """The items of a collection an undo entry keeps alive."""
    op = entry[0]
    if op == _MOVED:
        return len(entry[4])
    return len(entry[2]) if op in (_OPEN_ALL, _PENDING) else 0


class LateEventError(ValueError):
    """An event at or before what the engine already applied: roll back to its time first."""


def _year(at: int) -> int:
    return (_EPOCH + timedelta(microseconds=at)).year


def flow_id(e: Event) -> str:
    """The flow a bulk event belongs to: same sender, recipient, categories and terms."""
    parts = (
        e.event_type, e.holder, e.holder_role, e.holder_region, e.recipient, e.recipient_role, e.recipient_region,
        ",".join(sorted(set(e.categories))), e.purpose, e.legal_basis, e.mechanism, e.retention_days, e.encrypted,
    )  # fmt: skip
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


class _Log:
    """A holder's changes in time order: +1 when a run starts there, -1 when one ends."""

    __slots__ = ("deltas", "keys", "times")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.keys: list[Key] = []
        self.deltas: list[int] = []

    def add(self, at: int, key: Key, delta: int) -> None:
        self.times.append(at)
        self.keys.append(key)
        self.deltas.append(delta)


class _Flow:
    """One bulk flow: its events so far, its cursor in the sender's log, its open runs at the recipient."""

    __slots__ = ("categories", "closed_now", "count", "cursor", "cursor_at", "id", "ids", "open", "pending", "prov",
                 "recipient", "selections", "sender", "times", "_carries")  # fmt: skip

    def __init__(self, fid: str, sender: str, recipient: str, categories: tuple[str, ...], prov: Provenance) -> None:
        self.id, self.sender, self.recipient, self.categories, self.prov = fid, sender, recipient, categories, prov
        self.times: list[int] = []
        self.ids: list[str] = []
        self.selections: list[int] = []  # each event's bulk_as_of
        self.count: dict[Key, int] = {}  # the sender's live runs per carried pair, at the cursor
        self.cursor = 0  # entries of the sender's log applied to ``count``
        self.cursor_at: int | None = None
        self.open: dict[Key, Run] = {}  # runs at the recipient that every event since their start extended
        self.pending: set[Key] = set()  # carried pairs whose run the recipient erased: the next event restarts them
        self.closed_now: dict[Key, Run] = {}
        self._carries: dict[str, bool] = {}

    def info(self) -> FlowInfo:
        return FlowInfo(self.id, self.sender, self.recipient, self.categories, self.prov)

    def carries(self, category: str) -> bool:
        found = self._carries.get(category)
        if found is None:
            found = self._carries[category] = covered(category, self.categories)
        return found

    def move(self, log: _Log, to: int) -> tuple[set[Key], set[Key], dict[Key, int]]:
        """Move the cursor to ``to`` (a bulk_as_of); the pairs that start and stop being held, the counts it changed."""
        count, carries = self.count, self.carries
        before: dict[Key, int] = {}
        i = self.cursor
        if self.cursor_at is None or to >= self.cursor_at:
            n = len(log.times)
            while i < n and log.times[i] <= to:
                key = log.keys[i]
                if carries(key[1]):
                    if key not in before:
                        before[key] = count.get(key, 0)
                    count[key] = count.get(key, 0) + log.deltas[i]
                i += 1
        else:
            while i > 0 and log.times[i - 1] > to:
                i -= 1
                key = log.keys[i]
                if carries(key[1]):
                    if key not in before:
                        before[key] = count.get(key, 0)
                    count[key] = count.get(key, 0) - log.deltas[i]
        self.cursor, self.cursor_at = i, to
        entering, leaving = set(), set()
        for key, was in before.items():
            now = count[key]
            if now <= 0:
                del count[key]
                if was > 0:
                    leaving.add(key)
            elif was <= 0:
                entering.add(key)
        return entering, leaving, before


class _Links:
    """Identifier links as edges (first declared when), and one person key per linked identifier.

    A union-find whose root is the smallest identifier. Its paths are shortened only while a link is
    added, each write kept in the undo journal (``undo``), so a rollback restores it exactly; reading
    a person key changes nothing.
    """

    __slots__ = ("edges", "parent")

    def __init__(self) -> None:
        self.edges: dict[tuple[str, str], int] = {}
        self.parent: dict[str, str] = {}

    def add(self, a: str, b: str, at: int, undo: _Undo | None = None) -> bool:
        """Declare a link; whether an edge or a person key changed (a link declared again changes none)."""
        if a == b:
            return False
        pair = (a, b) if a < b else (b, a)
        known = self.edges.get(pair)
        changed = known is None or at < known
        if changed:
            if undo is not None:
                undo.append((_EDGE, pair, known))
            self.edges[pair] = at
        ra, rb = self._root(a, undo), self._root(b, undo)
        if ra != rb:  # the smallest identifier names the person: the same key however links arrive
            self._set(max(ra, rb), min(ra, rb), undo)
            changed = True
        return changed

    def person(self, ident: str) -> str:
        """The person key of a linked identifier."""
        parent = self.parent
        while (up := parent[ident]) != ident:
            ident = up
        return ident

    def _root(self, ident: str, undo: _Undo | None) -> str:
        parent = self.parent
        if ident not in parent:
            self._set(ident, ident, undo)
            return ident
        root = self.person(ident)
        while ident != root:  # path compression
            up = parent[ident]
            if up != root:
                self._set(ident, root, undo)
            ident = up
        return root

    def _set(self, ident: str, up: str, undo: _Undo | None) -> None:
        if undo is not None:
            undo.append((_PARENT, ident, self.parent.get(ident)))
        self.parent[ident] = up


class HoldingsEngine:
    """Holdings as runs, kept up to date by ``apply`` in event-time order."""

    def __init__(self) -> None:
        """Start with nothing held."""
        self._rows: dict[str, dict[str, list[Run]]] = {}  # holder -> subject -> runs
        self._flows: dict[str, _Flow] = {}
        self._logs: dict[str, _Log] = {}
        self._links = _Links()
        self._now: int | None = None
        self._erasures_now: dict[str, list[Event]] = {}
        self._hops_now: list[_Flow] = []
        # (holder, subject, event id) of the arrivals applied at this instant: a copy of an event (stored
        # twice) comes at its original's instant, since an event at or before the watermark rolls the
        # engine back and that instant is applied again whole; but see ``_late_now``
        self._arrived_now: set[tuple[str, str, str]] = set()
        # event id -> own time of the events applied at this instant that are older than the retention
        # cut-off and read as at it (``Event.clamped_from``): a copy of one applied before the cut-off
        # comes at another instant than its original, so a collection is looked for among the
        # subject's runs, and an erasure ends only what arrived by its own time
        self._late_now: dict[str, int] = {}
        self._provs: dict[Provenance, Provenance] = {}
        # what changed since ``take_changes``: a store rewrites those rows alone. ``_changed``: subjects
        # with a run changed or removed; ``_added``: runs started (None: too many kept, their subjects
        # moved to ``_changed``), whose subjects need no rewrite unless also in ``_changed``
        self._changed: set[str] = set()
        self._added: list[Run] | None = []
        self._flows_changed = False
        self._links_changed = False
        # the undo journal: every change ``apply`` made, and where each instant's changes start in it
        self._undo: _Undo = []
        self._instants: list[int] = []
        self._instant_starts: list[int] = []
        self._undo_floor: int | None = None  # the journal holds every change of the instants after this time
        self._undo_held = 0  # the items of the collections its entries keep (a flow's counts and open runs before)
        self.undo_limit = 500_000
        """Entries the journal keeps, with the items they hold (~100 bytes each; a quarter more before it
        forgets its oldest instants)."""
        self.watermark: int | None = None
        """The time of the last instant applied: later events only, or ``rollback`` first."""

    # --- reading the state ------------------------------------------------------------------------

    def runs(self) -> Iterator[Run]:
        """Every run."""
        for by_subject in self._rows.values():
            for runs in by_subject.values():
                yield from runs

    def runs_by_subject(self, only: Iterable[str] | None = None) -> Iterator[Run]:
        """Every run (``only``: of these subjects), in subject order (how the table is sorted)."""
        holders = list(self._rows.values())
        subjects: set[str] = set()
        if only is None:
            for by_subject in holders:
                subjects.update(by_subject)
        else:
            subjects.update(only)
        for subject in sorted(subjects):
            for by_subject in holders:
                yield from by_subject.get(subject, ())

    def arrivals(self, as_of: int) -> Iterator[tuple[str, str, str, int, str, int | None]]:
        """Every arrival up to ``as_of``: (subject, category, holder, arrived, via, ended by then or None)."""
        for run in self.runs():
            ended = run.ended if run.ended is not None and run.ended <= as_of else None
            if run.flow is None:
                if run.arrived <= as_of:
                    yield run.subject, run.category, run.holder, run.arrived, run.via, ended
                continue
            f = self._flows[run.flow]
            assert run.first_seq is not None
            last = len(f.times) - 1 if run.last_seq is None else run.last_seq
            for seq in range(run.first_seq, last + 1):
                if f.times[seq] <= as_of:
                    yield run.subject, run.category, run.holder, f.times[seq], f.ids[seq], ended

    def flow_events(self) -> Iterator[tuple[FlowEvent, FlowInfo]]:
        """Every event of every bulk flow, with the flow it belongs to."""
        for f in self._flows.values():
            info = f.info()
            for seq, (at, eid, sel) in enumerate(zip(f.times, f.ids, f.selections, strict=True)):
                yield FlowEvent(f.id, seq, at, eid, sel), info

    def flows(self) -> Iterator[tuple[FlowInfo, list[int], list[str], list[int]]]:
        """Every bulk flow in id order: its terms, and its events' times, ids and bulk_as_of, in order.

        The lists are the engine's own, for reading at once (a table made of them), never to keep.
        """
        for fid in sorted(self._flows):
            f = self._flows[fid]
            yield f.info(), f.times, f.ids, f.selections

    def links(self) -> Iterator[Link]:
        """Every identifier link, first declared when."""
        for (a, b), at in self._links.edges.items():
            yield Link(a, b, at)

    def person_of(self, identifier: str) -> str:
        """The person key of an identifier (itself when it is linked to none)."""
        return self._links.person(identifier) if identifier in self._links.parent else identifier

    def persons(self) -> Iterator[tuple[str, str]]:
        """(identifier, person key) for every identifier that is linked to another."""
        for ident in list(self._links.parent):
            yield ident, self._links.person(ident)

    def take_changes(self) -> Changes:
        """What changed since the last call (or since the engine was made or restored), and start afresh."""
        changed, added = self._changed, self._added or []
        subjects = changed.union(run.subject for run in added)
        new = tuple(run for run in added if run.subject not in changed)
        changes = Changes(frozenset(subjects), self._flows_changed, self._links_changed, new)
        self._changed, self._added, self._flows_changed, self._links_changed = set(), [], False, False
        return changes

    # --- building from stored state -----------------------------------------------------------------

    @classmethod
    def restore(
        cls,
        runs: Iterable[Run],
        flow_events: Iterable[tuple[FlowEvent, FlowInfo]],
        links: Iterable[Link],
        watermark: int | None,
    ) -> HoldingsEngine:
        """The engine whose state these rows are (what ``runs``/``flow_events``/``links`` gave)."""
        engine = cls()
        for run in runs:
            engine._rows.setdefault(run.holder, {}).setdefault(run.subject, []).append(run)
        for fe, (fid, sender, recipient, categories, prov) in sorted(flow_events, key=lambda x: (x[0].flow, x[0].seq)):
            f = engine._flows.get(fid)
            if f is None:
                f = engine._flows[fid] = _Flow(fid, sender, recipient, categories, prov)
            if fe.seq != len(f.times):
                raise ValueError(f"flow {fid} skips from event {len(f.times)} to {fe.seq}")
            f.times.append(fe.at)
            f.ids.append(fe.event_id)
            f.selections.append(fe.bulk_as_of)
        for link in links:
            engine._links.add(link.a, link.b, link.at)
        engine._restore_flows()
        engine._undo.clear()  # the logs it made: all before the floor, never undone
        engine.watermark = engine._undo_floor = watermark
        return engine

    def _restore_flows(self) -> None:
        """Cursors, counts, open runs and pending pairs of every flow, from the runs."""
        for f in self._flows.values():
            f.count, f.cursor, f.cursor_at, f.open, f.pending = {}, 0, None, {}, set()
        for run in self.runs():
            if run.flow is not None and run.ended is None and run.last_seq is None:
                self._flows[run.flow].open[run.key] = run
        for f in self._flows.values():
            if f.selections:
                f.move(self._log(f.sender), f.selections[-1])
                f.pending = {k for k in f.count if k not in f.open}

    def rollback(self, to: int) -> None:
        """Undo everything from time ``to`` on, so events from then can be applied (again) in order."""
        if self._undo_floor is None or to > self._undo_floor:
            self._undo_to(to)
        else:
            self._rebuild_to(to)
            self._undo, self._instants, self._instant_starts, self._undo_held = [], [], [], 0
            self._undo_floor = to - 1
        self._now, self._erasures_now, self._hops_now, self._arrived_now, self._late_now = None, {}, [], set(), {}
        self.watermark = to - 1

    def _undo_to(self, to: int) -> None:
        """Undo the journal's instants from ``to`` on, newest first: each change set back as it was."""
        i = bisect_left(self._instants, to)
        if i == len(self._instants):
            return
        undo, start = self._undo, self._instant_starts[i]
        del self._instants[i:], self._instant_starts[i:]
        changed, rows, flows, links = self._changed, self._rows, self._flows, self._links
        for n in range(len(undo) - 1, start - 1, -1):
            entry = undo[n]
            op = entry[0]
            if op == _RUN_ADDED:
                _, runs, run = entry
                runs.pop()
                changed.add(run.subject)
                if not runs and rows[run.holder].get(run.subject) is runs:
                    del rows[run.holder][run.subject]
            elif op == _RUN_FIELDS:
                run = entry[1]
                run.last_seq, run.ended, run.ended_by = entry[2:]
                changed.add(run.subject)
            elif op == _OPEN:
                _, f, key, run = entry
                if run is None:
                    del f.open[key]
                else:
                    f.open[key] = run
            elif op == _MOVED:
                _, f, cursor, cursor_at, before = entry
                self._undo_held -= len(before)
                f.cursor, f.cursor_at, count = cursor, cursor_at, f.count
                for key, was in before.items():
                    if was:
                        count[key] = was
                    else:
                        count.pop(key, None)
            elif op == _FLOW_EVENT:
                f = entry[1]
                del f.times[-1], f.ids[-1], f.selections[-1]
                self._flows_changed = True
            elif op == _FLOW_ADDED:
                del flows[entry[1]]
            elif op == _OPEN_ALL:
                entry[1].open = entry[2]
                self._undo_held -= len(entry[2])
            elif op == _PENDING:
                entry[1].pending = entry[2]
                self._undo_held -= len(entry[2])
            elif op == _PENDING_ADDED:
                entry[1].pending.discard(entry[2])
            elif op == _EDGE:
                _, pair, known = entry
                if known is None:
                    del links.edges[pair]
                else:
                    links.edges[pair] = known
                self._links_changed = True
            elif op == _LOG_ADDED:
                del self._logs[entry[1]]
            else:  # _PARENT
                _, ident, up = entry
                if up is None:
                    del links.parent[ident]
                else:
                    links.parent[ident] = up
        del undo[start:]
        for log in self._logs.values():  # each log is in time order, an entry made at its own time
            k = bisect_left(log.times, to)
            del log.times[k:], log.keys[k:], log.deltas[k:]

    def _rebuild_to(self, to: int) -> None:
        """Undo from ``to`` on without the journal: every run, flow and link walked, the flows' state rebuilt."""
        cut = {fid: bisect_left(f.times, to) for fid, f in self._flows.items()}
        kept: dict[str, dict[str, list[Run]]] = {}
        changed = self._changed
        for run in self.runs():
            if run.arrived >= to:
                changed.add(run.subject)
                continue
            if run.ended is not None and run.ended >= to:
                run.ended = run.ended_by = None
                changed.add(run.subject)
            if run.flow is not None and run.ended is None and run.last_seq is not None:
                if run.last_seq >= cut[run.flow] - 1:  # closed by an event now undone: open again
                    run.last_seq = None
                    changed.add(run.subject)
            kept.setdefault(run.holder, {}).setdefault(run.subject, []).append(run)
        for by_subject in kept.values():
            for subject, runs in by_subject.items():
                by_subject[subject] = self._merge_split(runs)
        self._rows = kept
        for fid, f in list(self._flows.items()):
            k = cut[fid]
            self._flows_changed |= k < len(f.times)
            del f.times[k:], f.ids[k:], f.selections[k:]
            if not f.times:
                del self._flows[fid]
        links = [link for link in self.links() if link.at < to]
        self._links_changed |= len(links) < len(self._links.edges)
        self._links = _Links()
        for link in links:
            self._links.add(link.a, link.b, link.at)
        self._logs = {}
        self._restore_flows()

    def catch_up(
        self,
        new: Iterator[Event],
        replay: Callable[[int], Iterable[Event]],
        *,
        kept: Callable[[int], list[Event] | None] | None = None,
    ) -> tuple[Iterator[Event], int | None]:
        """What to ``apply`` for the events ``new`` (not applied yet, in event-time order); the time rolled back to.

        The earliest at or before the watermark (a late event) rolls the engine back to its time, and
        every event from then on (``replay(time)``) is applied again. No new event: no rollback.
        ``kept(time)``: the events already applied from that time on, when the caller kept every one
        (None otherwise); they are replayed merged with ``new`` in event-time order, not read again.
        """
        first = next(new, None)
        if first is None:
            return iter(()), None
        if self.watermark is not None and first.at <= self.watermark:
            self.rollback(first.at)
            again = None if kept is None else kept(first.at)
            if again is not None:
                return merge(again, chain([first], new), key=Event.sort_key), first.at
            return iter(replay(first.at)), first.at
        return chain([first], new), None

    def _merge_split(self, runs: list[Run]) -> list[Run]:
        """Join two live runs of one flow that follow each other: a split a rolled-back erasure made."""
        out: list[Run] = []
        last_of: dict[tuple[str | None, Key], Run] = {}
        for run in sorted(runs, key=lambda r: (r.flow or "", r.first_seq or 0, r.arrived)):
            if run.flow is not None and run.ended is None:
                prev = last_of.get((run.flow, run.key))
                f = self._flows[run.flow]
                if (
                    prev is not None
                    and prev.last_seq is not None
                    and run.first_seq == prev.last_seq + 1
                    and _year(f.times[prev.last_seq]) == _year(f.times[run.first_seq])
                ):
                    prev.last_seq = run.last_seq
                    self._changed.add(run.subject)
                    continue
                last_of[(run.flow, run.key)] = run
            out.append(run)
        return out

    # --- applying events -----------------------------------------------------------------------------

    def apply(self, events: Iterable[Event], *, ordered: bool = False) -> int:
        """Apply events later than ``watermark`` in event-time order; return how many.

        ``ordered``: the events come sorted by ``Event.sort_key`` (streamed, not held in memory; checked).
        """
        with paused_gc():  # runs and undo entries stay alive: a collection would walk them all and find nothing
            return self._apply_all(events if ordered else sorted(events, key=Event.sort_key), ordered)

    def _apply_all(self, events: Iterable[Event], ordered: bool) -> int:
        n = 0
        previous: tuple[int, int, int, str] | None = None
        for e in events:
            if self.watermark is not None and e.at <= self.watermark:
                raise LateEventError(f"an event at {e.at} is not after what is applied ({self.watermark})")
            if ordered:
                key = e.sort_key()
                if previous is not None and key < previous:
                    raise ValueError(f"events out of order: {key} after {previous}")
                previous = key
            if e.at != self._now:
                self._close_instant()
                self._now, self._erasures_now, self._hops_now = e.at, {}, []
                self._arrived_now, self._late_now = set(), {}
                if len(self._undo) + self._undo_held > self.undo_limit + self.undo_limit // 4:  # a quarter at a time
                    self._forget_undo()
                self._instants.append(e.at)
                self._instant_starts.append(len(self._undo))
            self._apply(e)
            n += 1
        self._close_instant()
        return n

    def _forget_undo(self) -> None:
        """Drop the oldest instants' entries down to ``undo_limit`` (a rollback before them rebuilds)."""
        undo, starts = self._undo, self._instant_starts
        over = len(undo) + self._undo_held - self.undo_limit
        i = n = 0
        while over > 0 and i < len(starts):  # whole instants, oldest first
            end = starts[i + 1] if i + 1 < len(starts) else len(undo)
            for entry in undo[n:end]:
                held = _held(entry)
                self._undo_held -= held
                over -= 1 + held
            n, i = end, i + 1
        if i:
            self._undo_floor = self._instants[i - 1]
            del undo[:n], self._instants[:i], starts[:i]
            self._instant_starts = [start - n for start in starts]

    def _apply(self, e: Event) -> None:
        if e.clamped_from is not None:
            self._late_now[e.event_id] = e.clamped_from
        if e.scope == "SUBJECT":
            assert e.subject_id is not None
            for other in e.linked:
                if self._links.add(e.subject_id, other, e.at, self._undo):
                    self._links_changed = True
            if e.event_type in _FLOWS:
                self._arrive(e)
            elif e.event_type == "ERASED" and e.erasure_outcome in _ENDING:
                self._erasures_now.setdefault(e.holder, []).append(e)
                for run in self._rows.get(e.holder, {}).get(e.subject_id, ()):
                    if run.ended is None and covered(run.category, e.categories) and self._arrived_by(run, e):
                        self._end(run, e)
        elif e.event_type == "ERASED" and e.erasure_outcome in _ENDING:
            self._erasures_now.setdefault(e.holder, []).append(e)
            self._erase_bulk(e)
        elif e.event_type in ("SHARED", "TRANSFERRED"):
            self._hop(e)

    def _close_instant(self) -> None:
        """Bulk flows selected at this instant may carry what other such flows brought at it: repeat until none.

        A pair found in a later round enters at the first of the flow's events selected at this
        instant (they come last in the instant, together, and carry the same pairs).
        """
        now = self._now
        if now is not None:
            changed = True
            while changed:
                changed = False
                for f in dict.fromkeys(self._hops_now):
                    if f.selections[-1] == now and f.cursor < len(self._log(f.sender).times):
                        self._carry_changes(f, len(f.times) - 1)
                        changed = True
            self.watermark = now
        self._now, self._erasures_now, self._hops_now, self._arrived_now, self._late_now = None, {}, [], set(), {}

    def _arrive(self, e: Event) -> None:
        collected = e.event_type == "COLLECTED"
        holder = e.holder if collected else e.recipient
        assert holder is not None and e.subject_id is not None
        eid = e.event_id
        arrival = (holder, e.subject_id, eid)
        if arrival in self._arrived_now:
            return  # the same event stored twice (delivery is at-least-once): not a scan of the subject's runs
        self._arrived_now.add(arrival)
        runs = self._rows.setdefault(holder, {}).setdefault(e.subject_id, [])
        if e.clamped_from is not None:  # perhaps a copy of one applied before the cut-off, read at it
            for r in runs:
                if r.via == eid and r.flow is None:
                    return
        prov = Provenance(
            e.event_type,
            False,
            e.holder_role if collected else e.recipient_role,
            e.holder_region if collected else e.recipient_region,
            (e.source or "direct") if collected else e.holder,
            None if collected else e.holder_region,
            e.purpose,
            e.legal_basis,
            e.mechanism,
            e.retention_days,
            e.encrypted,
        )
        prov = self._provs.setdefault(prov, prov)  # a few distinct terms shared by millions of runs
        for category in dict.fromkeys(e.categories):
            self._start(Run(e.subject_id, category, holder, e.at, e.event_id, prov), runs)

    def _start(self, run: Run, runs: list[Run]) -> None:
        self._undo.append((_RUN_ADDED, runs, run))
        runs.append(run)
        added = self._added
        if added is None:
            self._changed.add(run.subject)
        else:
            added.append(run)
            if len(added) > _ADDED_LIMIT:  # an apply from nothing: every subject is written whole anyway
                self._changed.update(r.subject for r in added)
                self._added = None
        log = self._logs.get(run.holder)
        if log is not None:
            log.add(run.arrived, run.key, 1)
        for x in self._erasures_now.get(run.holder, ()):  # an erasure at the same instant ends it
            if covered(run.category, x.categories) and (
                run.subject == x.subject_id and self._arrived_by(run, x)
                if x.scope == "SUBJECT"
                else run.arrived <= (x.bulk_as_of or 0)
            ):
                self._end(run, x)
                break

    def _arrived_by(self, run: Run, x: Event) -> bool:
        """Whether ``run`` arrived by the time erasure ``x`` occurred: its own time, if read at the retention cut-off.

        Such an erasure is a copy of one applied before the cut-off (stored again after retention), or
        one that came too late: either way it must not end what arrived after it, between its own
        time and the cut-off. A run arriving at this instant from an event also read at the cut-off
        is judged by that event's own time.
        """
        if x.clamped_from is None:
            return True
        # a run of an earlier instant arrived then, even when a copy of its event is read here too
        arrived = self._late_now.get(run.via, run.arrived) if run.arrived == x.at else run.arrived
        return arrived <= x.clamped_from

    def _end(self, run: Run, x: Event) -> None:
        undo = self._undo
        undo.append((_RUN_FIELDS, run, run.last_seq, run.ended, run.ended_by))
        run.ended, run.ended_by = x.at, x.event_id
        self._changed.add(run.subject)
        if run.flow is not None:
            f = self._flows[run.flow]
            key = run.key
            if f.open.get(key) is run:
                undo.append((_OPEN, f, key, run))
                del f.open[key]
                run.last_seq = len(f.times) - 1
                if f.count.get(key, 0) > 0 and key not in f.pending:
                    undo.append((_PENDING_ADDED, f, key))
                    f.pending.add(key)
        log = self._logs.get(run.holder)
        if log is not None:
            log.add(x.at, run.key, -1)

    def _erase_bulk(self, x: Event) -> None:
        """End the covered arrivals up to ``bulk_as_of``; a run with later arrivals keeps those."""
        assert x.bulk_as_of is not None
        selected = x.bulk_as_of
        for runs in self._rows.get(x.holder, {}).values():
            for run in list(runs):
                if run.ended is not None or run.arrived > selected or not covered(run.category, x.categories):
                    continue
                if run.flow is None:
                    self._end(run, x)
                    continue
                f = self._flows[run.flow]
                last = run.last_seq if run.last_seq is not None else len(f.times) - 1
                if f.times[last] <= selected:
                    self._end(run, x)
                    continue
                k = bisect_right(f.times, selected)  # the first of its arrivals after the selection
                rest = Run(run.subject, run.category, run.holder, f.times[k], f.ids[k], run.prov, run.flow, k,
                           run.last_seq)  # fmt: skip
                undo = self._undo
                undo.append((_RUN_FIELDS, run, run.last_seq, run.ended, run.ended_by))
                run.last_seq, run.ended, run.ended_by = k - 1, x.at, x.event_id
                self._changed.add(run.subject)
                if f.open.get(run.key) is run:
                    undo.append((_OPEN, f, run.key, run))
                    f.open[run.key] = rest
                undo.append((_RUN_ADDED, runs, rest))
                runs.append(rest)  # held all along: no change to the holder's log

    def _hop(self, e: Event) -> None:
        fid = flow_id(e)
        f = self._flows.get(fid)
        if f is None:
            assert e.recipient is not None
            prov = Provenance(
                via_type=e.event_type,
                via_bulk=True,
                holder_role=e.recipient_role,
                holder_region=e.recipient_region,
                source=e.holder,
                source_region=e.holder_region,
                purpose=e.purpose,
                legal_basis=e.legal_basis,
                mechanism=e.mechanism,
                retention_days=e.retention_days,
                encrypted=e.encrypted,
            )
            f = self._flows[fid] = _Flow(fid, e.holder, e.recipient, tuple(sorted(set(e.categories))), prov)
            self._undo.append((_FLOW_ADDED, fid))
        elif e.event_id in f.ids:
            return  # stored twice
        assert e.bulk_as_of is not None
        undo = self._undo
        undo.append((_FLOW_EVENT, f))
        f.times.append(e.at)
        f.ids.append(e.event_id)
        f.selections.append(e.bulk_as_of)
        self._flows_changed = True
        k = len(f.times) - 1
        f.closed_now = {}
        if k > 0 and _year(e.at) != _year(f.times[k - 1]):
            for run in f.open.values():  # a new year: every open run closes, the year's own start
                undo.append((_RUN_FIELDS, run, run.last_seq, run.ended, run.ended_by))
                run.last_seq = k - 1
                self._changed.add(run.subject)
            undo.append((_OPEN_ALL, f, f.open))
            undo.append((_PENDING, f, f.pending))
            self._undo_held += len(f.open) + len(f.pending)
            f.open, f.pending = {}, set(f.count)
        self._hops_now.append(f)
        self._carry_changes(f, k)

    def _carry_changes(self, f: _Flow, k: int) -> None:
        """Apply the sender's changes up to event ``k``'s selection: runs close, start, or resume.

        A pair that starts being held at this very instant is carried by every event of the flow
        selected at the instant (they come last in it, together): its run starts at the first.
        """
        now = f.times[k]
        start = k
        if f.selections[k] == now:
            while start > 0 and f.times[start - 1] == now and f.selections[start - 1] == now:
                start -= 1
        undo = self._undo
        cursor, cursor_at = f.cursor, f.cursor_at
        entering, leaving, before = f.move(self._log(f.sender), f.selections[k])
        undo.append((_MOVED, f, cursor, cursor_at, before))
        self._undo_held += len(before)
        for key in leaving:
            run = f.open.pop(key, None)
            if run is not None:
                undo.append((_OPEN, f, key, run))
                undo.append((_RUN_FIELDS, run, run.last_seq, run.ended, run.ended_by))
                run.last_seq = k - 1
                self._changed.add(run.subject)
                f.closed_now[key] = run
        starting = entering | f.pending
        if f.pending:
            undo.append((_PENDING, f, f.pending))
            self._undo_held += len(f.pending)
            f.pending = set()
        at, eid = f.times[start], f.ids[start]
        for key in starting:
            if key in f.open or f.count.get(key, 0) <= 0:
                continue
            undo.append((_OPEN, f, key, None))
            again = f.closed_now.pop(key, None)
            if again is not None and again.ended is None:  # it stopped and resumed within this instant
                undo.append((_RUN_FIELDS, again, again.last_seq, again.ended, again.ended_by))
                again.last_seq = None
                self._changed.add(again.subject)
                f.open[key] = again
                continue
            run = Run(key[0], key[1], f.recipient, at, eid, f.prov, f.id, start)
            f.open[key] = run
            self._start(run, self._rows.setdefault(f.recipient, {}).setdefault(key[0], []))

    def _log(self, holder: str) -> _Log:
        """The holder's log of changes, made from its runs the first time a flow leaves it."""
        log = self._logs.get(holder)
        if log is None:
            entries: list[tuple[int, int, Key]] = []
            for runs in self._rows.get(holder, {}).values():
                for run in runs:
                    entries.append((run.arrived, 1, run.key))
                    if run.ended is not None:
                        entries.append((run.ended, -1, run.key))
            entries.sort(key=lambda x: x[0])
            log = self._logs[holder] = _Log()
            for at, delta, key in entries:
                log.add(at, key, delta)
            # made at this instant from every run: a rollback before now must drop it, not cut it at its
            # time, since a run split by a bulk erasure after that time adds a +1 dated before it
            self._undo.append((_LOG_ADDED, holder))
        return log
